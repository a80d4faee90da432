"""CAPA: creation from a source, edits, actions (added, completed with evidence) and the
rules of the workflow's transitions. Every function flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.capa.models import Capa, CapaAction, CapaSource
from qms.dates import today
from qms.db import utcnow
from qms.deviations.models import Deviation
from qms.errors import Conflict, InvalidInput, NotFound, NotPermitted
from qms.identity.models import User
from qms.identity.roles import RoleTable
from qms.records.service import create_record, required_reason, revise_record, update_record
from qms.records.workflow import Transition, Workflow

# an owner is someone who may act on CAPA at all: the GMP roles, not auditors or admins only
OWNER_PERMISSION = "capa.act"
MANAGE_PERMISSION = "capa.manage"
ACTION_STATES = ("open", "implementing")  # actions may be planned while these
COMPLETION_STATE = "implementing"
# a deviation in these states relies on its CAPAs: closure needs a not cancelled one
RELIANT_DEVIATION_STATES = ("pending_closure", "closed")


def create_capa(session: Session, workflow: Workflow, roles: RoleTable, actor: User,
                fields: Mapping[str, Any]) -> Capa:
    """A new CAPA (version 1, state open, CAPA-YYYY-NNNNN). The owner must be an active user
    who may act on CAPA (422 ``owner``); a deviation source must name an existing deviation
    that is not cancelled (422 ``source_reference``)."""
    cleaned = {name: value.strip() if isinstance(value, str) else value
               for name, value in fields.items()}
    check_owner(session, roles, cleaned.get("owner"), field="owner")
    if cleaned.get("source") == CapaSource.DEVIATION.value:
        _check_source_deviation(session, cleaned.get("source_reference"))
    return create_record(session, workflow, actor, cleaned)


def check_owner(session: Session, roles: RoleTable, username: str | None, *,
                field: str) -> None:
    """Refuse (422 on ``field``) a username that is not an active person who may act on
    CAPA."""
    user = session.scalar(select(User).where(User.username == username)) if username else None
    if user is None:
        raise InvalidInput(f"no user {username!r}", field=field)
    if not user.active or user.is_service:
        raise InvalidInput(f"{username} is not an active person", field=field)
    if not roles.allows(user.roles, OWNER_PERMISSION):
        raise InvalidInput(f"{username} holds no role that acts on CAPA", field=field)


def _check_source_deviation(session: Session, number: str | None) -> None:
    state = session.scalar(select(Deviation.state).where(Deviation.number == number))
    if state is None:
        raise InvalidInput(f"no deviation {number!r}", field="source_reference")
    if state == "cancelled":
        raise InvalidInput(f"deviation {number} is cancelled", field="source_reference")


def edit_capa(session: Session, workflow: Workflow, roles: RoleTable, capa: Capa, actor: User,
              changes: Mapping[str, Any], reason: str | None, *,
              expected_version: int | None = None) -> Capa:
    """Change the CAPA's own fields while open or implementing, with a reason; a new owner
    is checked like the first."""
    cleaned = {name: value.strip() if isinstance(value, str) else value
               for name, value in changes.items()}
    if "owner" in cleaned:
        check_owner(session, roles, cleaned["owner"], field="changes.owner")
    return update_record(session, workflow, capa, actor, cleaned, reason,
                         expected_version=expected_version)


def add_action(session: Session, roles: RoleTable, capa: Capa, actor: User, *,
               description: str, owner: str, due_on: date, reason: str | None) -> CapaAction:
    """Append action n+1 (a new CAPA version, event ``capa.action.added``) while the CAPA is
    open or implementing. The owner must be a person who may act on CAPA; the due date may
    not be in the past."""
    if capa.state not in ACTION_STATES:
        raise Conflict(f"{capa.number} is {capa.state}; actions are added only while "
                       f"{' or '.join(ACTION_STATES)}", extra={"state": capa.state})
    reason = required_reason(reason)
    description = _required(description, "description")
    check_owner(session, roles, owner, field="owner")
    if due_on < today():
        raise InvalidInput("the due date is in the past", field="due_on")
    action = CapaAction(position=len(capa.actions) + 1, description=description, owner=owner,
                        due_on=due_on, added_by=actor.username)
    capa.actions.append(action)
    session.flush()
    revise_record(session, capa, actor.username, action="add_action", reason=reason,
                  event=AuditAction.Capa.ACTION_ADDED, details={"action": action.position})
    return action


def complete_action(session: Session, roles: RoleTable, capa: Capa, actor: User,
                    position: int, *, evidence: str, reason: str | None = None) -> CapaAction:
    """Complete action ``position`` with evidence while the CAPA is implementing (a new CAPA
    version, event ``capa.action.completed``). Only the action's owner or a holder of
    capa.manage may complete it (403); a completed action stays completed (409)."""
    action = next((a for a in capa.actions if a.position == position), None)
    if action is None:
        raise NotFound(f"{capa.number} has no action {position}")
    if actor.username != action.owner and not roles.allows(actor.roles, MANAGE_PERMISSION):
        raise NotPermitted(f"only the action's owner ({action.owner}) or a CAPA manager may "
                           "complete it")
    if capa.state != COMPLETION_STATE:
        raise Conflict(f"{capa.number} is {capa.state}; actions are completed while "
                       f"{COMPLETION_STATE}", extra={"state": capa.state})
    if action.completed_at is not None:
        raise Conflict(f"action {position} of {capa.number} was completed by "
                       f"{action.completed_by}", extra={"completed_by": action.completed_by})
    action.evidence = _required(evidence, "evidence")
    action.completed_at, action.completed_by = utcnow(), actor.username
    session.flush()
    revise_record(session, capa, actor.username, action="complete_action",
                  reason=(reason or "").strip() or f"action {position} completed",
                  event=AuditAction.Capa.ACTION_COMPLETED, details={"action": position})
    return action


def before_capa_transition(session: Session, capa: Capa, transition: Transition, actor: User,
                           reason: str | None) -> None:
    """Refuse (409) implementation without a planned action, the effectiveness check
    before every action is completed and its due date is set, and a cancel that would leave
    a deviation needing a CAPA with none."""
    if transition.action == "start_implementation" and not capa.actions:
        raise Conflict(f"{capa.number} has no action to implement; add one first",
                       extra={"missing": ["actions"]})
    if transition.action == "submit_effectiveness_check":
        open_actions = [a.position for a in capa.actions if a.completed_at is None]
        if not capa.actions or open_actions:
            raise Conflict(f"{capa.number}: every action must be completed first",
                           extra={"open_actions": open_actions})
        if capa.effectiveness_due_on is None:
            raise Conflict(f"{capa.number}: set effectiveness_due_on first",
                           extra={"missing": ["effectiveness_due_on"]})
    if transition.target == "cancelled":
        refuse_orphaning_cancel(session, capa)


def refuse_orphaning_cancel(session: Session, capa: Capa) -> None:
    """Refuse (409) cancelling the only not cancelled CAPA of a deviation that requires one
    and is pending closure or closed: its closure relies on that CAPA. The deviation row is
    locked first (PostgreSQL), so two CAPAs of one deviation cannot each be cancelled
    relying on the other, and a closure running at once (which holds the same lock) is
    either seen finished or waits for this decision."""
    if capa.source != CapaSource.DEVIATION.value:
        return
    deviation = session.scalar(select(Deviation).where(
        Deviation.number == capa.source_reference).with_for_update(of=Deviation))
    if deviation is None or not deviation.capa_required \
            or deviation.state not in RELIANT_DEVIATION_STATES:
        return
    others = session.scalar(select(func.count()).select_from(Capa).where(
        Capa.source == CapaSource.DEVIATION.value, Capa.source_reference == deviation.number,
        Capa.id != capa.id, Capa.state != "cancelled"))
    if not others:
        raise Conflict(f"{capa.number} is the only CAPA of deviation {deviation.number}, "
                       f"which requires one and is {deviation.state.replace('_', ' ')}; "
                       "it cannot be cancelled",
                       extra={"deviation": deviation.number,
                              "deviation_state": deviation.state})


def list_capas(session: Session, *, state: str | None = None, source: str | None = None,
               owner: str | None = None, source_reference: str | None = None,
               limit: int = 100, offset: int = 0) -> list[Capa]:
    """CAPAs, newest first, filtered by state, source, owner and source reference."""
    query = select(Capa).order_by(Capa.id.desc()).limit(limit).offset(offset)
    for column, value in ((Capa.state, state), (Capa.source, source), (Capa.owner, owner),
                          (Capa.source_reference, source_reference)):
        if value is not None:
            query = query.where(column == value)
    return list(session.scalars(query))


def _required(text: str | None, field: str) -> str:
    if text is None or not text.strip():
        raise InvalidInput(f"{field} is required", field=field)
    return text.strip()
