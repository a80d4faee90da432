"""Inspection plans: drafting, revisions, approval rules and look-ups. Flushes, never commits.

Only one plan is effective per material, stage and operation. A revision of an effective plan
is a new draft plan (revision + 1) that names the plan it supersedes; approving it needs a
change control in an authorising state that names the old plan (DESIGN.md "Change
control"), and makes the old plan ``superseded``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.errors import Conflict
from qms.identity.models import User
from qms.inspection.models import INSPECTION_PLANS, InspectionPlan
from qms.materials.models import Material
from qms.materials.service import material_by_code, require_active
from qms.records.service import create_record, find_named, find_record, revise_record
from qms.records.workflow import Transition, Workflow

EFFECTIVE, SUPERSEDED = "effective", "superseded"
PENDING_STATES = ("draft", "in_review")
CHANGE_KIND = "inspection_plan"  # how a change control names a plan among its items


def create_plan(session: Session, workflow: Workflow, actor: User,
                fields: Mapping[str, Any]) -> InspectionPlan:
    """A new draft plan, revision 1, numbered IP-YYYY-NNNNN, for an active material
    (unknown code: 422 naming ``material``)."""
    values = dict(fields)
    material = material_by_code(session, values.pop("material"))
    require_active(material)
    values["title"] = values["title"].strip()
    return create_record(session, workflow, actor, {**values, "material": material,
                                                    "revision": 1, "supersedes": None})


def new_revision(session: Session, workflow: Workflow, actor: User, plan: InspectionPlan,
                 changes: Mapping[str, Any] | None = None) -> InspectionPlan:
    """A draft copy of an effective plan, revision + 1, naming the plan it supersedes, with
    ``changes`` (plan fields) applied to the copy. Refuses (409) a plan that is not
    effective, or one whose next revision is already being prepared."""
    if plan.state != EFFECTIVE:
        raise Conflict(f"{plan.number} is {plan.state}; only an effective plan gets a new "
                       "revision", extra={"state": plan.state})
    pending = session.scalar(select(InspectionPlan.number).where(
        InspectionPlan.supersedes == plan.number, InspectionPlan.state.in_(PENDING_STATES)))
    if pending is not None:
        raise Conflict(f"{pending} is already the next revision of {plan.number}",
                       extra={"revision": pending})
    copied = {name: getattr(plan, name) for name in ("material", "stage", "operation", "title",
                                                     "sample_size", "inspection_level", "aql")}
    return create_record(session, workflow, actor, {
        **copied, "characteristics": [dict(c) for c in plan.characteristics], **(changes or {}),
        "revision": plan.revision + 1, "supersedes": plan.number})


def find_plan(session: Session, number: str, *, field: str | None = None) -> InspectionPlan:
    """The plan with this number: NotFound, or InvalidInput naming ``field`` when the number
    came in a request body."""
    if field is None:
        return find_record(session, INSPECTION_PLANS, number)
    return find_named(session, INSPECTION_PLANS, number, field=field, noun="inspection plan")


def effective_plan(session: Session, material_id: int, stage: str,
                   operation: str | None) -> InspectionPlan | None:
    """The effective plan for a material at a stage (and operation, in process)."""
    query = select(InspectionPlan).where(
        InspectionPlan.material_id == material_id, InspectionPlan.stage == stage,
        InspectionPlan.state == EFFECTIVE)
    query = query.where(InspectionPlan.operation.is_(None) if operation is None
                        else InspectionPlan.operation == operation)
    return session.scalars(query.order_by(InspectionPlan.id)).first()


def before_plan_transition(session: Session, plan: InspectionPlan, transition: Transition,
                           actor: User, reason: str | None) -> None:
    """Becoming effective: a revision whose superseded plan is still effective needs an
    approved change control naming that plan, whatever the revision's own material, stage
    and operation (a revision that moves to another operation still replaces it); and no
    other effective plan may exist for the revision's key, except the superseded one."""
    if transition.target != EFFECTIVE:
        return
    # serialise approvals of plans of one material, so two cannot both become effective
    session.execute(select(Material.id).where(Material.id == plan.material_id)
                    .with_for_update())
    replaced = _effective_superseded(session, plan)
    if replaced is not None and _authorising_change(session, replaced.number) is None:
        raise Conflict(f"{plan.number} revises the effective plan {replaced.number}: approving "
                       f"it needs an approved change control naming {replaced.number}",
                       extra={"supersedes": replaced.number})
    current = effective_plan(session, plan.material_id, plan.stage, plan.operation)
    if current is not None and current.number != plan.supersedes:
        raise Conflict(f"{current.number} is the effective {plan.stage} plan of "
                       f"{plan.material.number}{_at(plan)}; make a revision of it instead",
                       extra={"effective": current.number})


def _effective_superseded(session: Session, plan: InspectionPlan) -> InspectionPlan | None:
    """The plan this revision supersedes, while it is effective (not retired meanwhile)."""
    if plan.supersedes is None:
        return None
    old = find_plan(session, plan.supersedes)
    return old if old.state == EFFECTIVE else None


def after_plan_transition(session: Session, plan: InspectionPlan, transition: Transition,
                          actor: User, reason: str | None) -> None:
    """The plan a newly effective revision supersedes becomes ``superseded``."""
    if transition.target != EFFECTIVE or plan.supersedes is None:
        return
    old = find_plan(session, plan.supersedes)
    if old.state != EFFECTIVE:
        return  # retired meanwhile: nothing to supersede
    change = _authorising_change(session, old.number)
    revise_record(session, old, actor.username, action="supersede", state=SUPERSEDED,
                  reason=f"superseded by {plan.number} (revision {plan.revision})",
                  details={"superseded_by": plan.number,
                           "change_control": getattr(change, "number", None)},
                  event=AuditAction.Inspection.PLAN_SUPERSEDED)


def _authorising_change(session: Session, number: str):
    from qms.change_control.service import approved_change_naming
    return approved_change_naming(session, CHANGE_KIND, number)


def _at(plan: InspectionPlan) -> str:
    return f" at {plan.operation}" if plan.operation else ""


def list_plans(session: Session, *, state: str | None = None, material: str | None = None,
               stage: str | None = None, limit: int = 100,
               offset: int = 0) -> list[InspectionPlan]:
    """Plans, newest first, filtered by state, material code and stage."""
    query = select(InspectionPlan).order_by(InspectionPlan.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(InspectionPlan.state == state)
    if stage is not None:
        query = query.where(InspectionPlan.stage == stage)
    if material is not None:
        query = query.where(InspectionPlan.material_id == select(Material.id).where(
            Material.number == material).scalar_subquery())
    return list(session.scalars(query))
