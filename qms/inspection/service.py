"""Opening inspection lots, and look-ups. Flushes, never commits.

An inspection lot inspects one received lot (incoming) or one batch (in process at an
operation, or final) by the plan effective for its material and stage. It records the plan
revision, the characteristics with their limits, the lot size in sampling units and the
sample size: the plan's fixed size, or the AQL plan for the lot size (MIL-STD-105E, normal
inspection), never more than the lot. The lot size is given when opening (e.g. the number of
containers received), else it is the lot's quantity rounded up to whole units.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.errors import Conflict, InvalidInput
from qms.identity.models import User
from qms.inspection.aql import sampling_plan
from qms.inspection.models import (INSPECTIONS, UNDECIDED_STATES, Inspection, InspectionPlan,
                                   Stage)
from qms.inspection.plans import EFFECTIVE, effective_plan, find_plan
from qms.inspection.rules import lot_size_of
from qms.materials.models import BATCHES, LOTS, Batch, Lot, Material
from qms.records.service import create_record, find_named
from qms.records.workflow import Workflow

INCOMING, IN_PROCESS, FINAL = Stage.INCOMING.value, Stage.IN_PROCESS.value, Stage.FINAL.value
# inspection states that do not stand in the way of releasing the batch's lot


def open_inspection(session: Session, workflow: Workflow, actor: User,
                    request: Mapping[str, Any]) -> Inspection:
    """Open an inspection lot from a request naming ``plan`` or ``stage`` (and optionally
    ``material``), ``lot_number`` or ``batch_number``, ``operation`` and ``lot_size``. Bad or
    unknown references -> 422 naming the field; no effective plan, a lot out of quarantine,
    or an undecided inspection of the same thing -> 409."""
    lot, batch = _inspected(session, request)
    material = (lot or batch).material
    plan = _plan(session, request, material)
    _check_target(plan, lot, batch, request)
    return _open(session, workflow, actor, plan, lot=lot, batch=batch,
                 lot_size=request.get("lot_size"))


def open_on_receipt(session: Session, lot: Lot, actor: User) -> Inspection | None:
    """The on_lot_received callback: open the incoming inspection of a received lot when its
    material has an effective incoming plan."""
    plan = effective_plan(session, lot.material_id, INCOMING, None)
    if plan is None:
        return None
    from qms.context import state  # the app's workflows, inside a request or job
    return _open(session, state().workflows.get(INSPECTIONS.name), actor, plan, lot=lot,
                 batch=None, lot_size=None)


def _open(session: Session, workflow: Workflow, actor: User, plan: InspectionPlan, *,
          lot: Lot | None, batch: Batch | None, lot_size: int | None) -> Inspection:
    _refuse_duplicate(session, plan, lot, batch)
    units = lot_size if lot_size is not None else lot_size_of((lot or batch).quantity)
    fields = {"plan": plan, "plan_revision": plan.revision, "material": plan.material,
              "stage": plan.stage, "operation": plan.operation, "lot": lot, "batch": batch,
              "lot_size": units, "characteristics": [dict(c) for c in plan.characteristics],
              "deviation": None, **sample_of(plan, units)}
    return create_record(session, workflow, actor, fields)


def sample_of(plan: InspectionPlan, lot_size: int) -> dict[str, Any]:
    """Sample size (and the AQL plan's code letter and Ac/Re) for a lot of ``lot_size``
    units; a fixed sample size larger than the lot inspects the whole lot."""
    if plan.aql is None:
        return {"sample_size": min(plan.sample_size, lot_size), "code_letter": None,
                "accept_number": None, "reject_number": None}
    sampling = sampling_plan(lot_size, plan.inspection_level, plan.aql)
    return {"sample_size": sampling.sample_size, "code_letter": sampling.code_letter,
            "accept_number": sampling.accept, "reject_number": sampling.reject}


def _inspected(session: Session, request: Mapping[str, Any]) -> tuple[Lot | None, Batch | None]:
    lot_number, batch_number = request.get("lot_number"), request.get("batch_number")
    if lot_number is not None and batch_number is not None:
        raise InvalidInput("name a lot_number or a batch_number, not both", field="batch_number")
    if lot_number is not None:
        return find_named(session, LOTS, lot_number, field="lot_number",
                          for_update=True), None
    if batch_number is not None:
        return None, find_named(session, BATCHES, batch_number, field="batch_number",
                                for_update=True)
    raise InvalidInput("name the lot_number (incoming) or the batch_number (in process, final)",
                       field="lot_number")


def _plan(session: Session, request: Mapping[str, Any], material: Material) -> InspectionPlan:
    """The named plan (it must be effective), else the effective plan for the stage."""
    code = request.get("material")
    if code is not None and code != material.number:
        raise InvalidInput(f"the inspected lot is of {material.number}, not {code}",
                           field="material")
    if request.get("plan") is not None:
        plan = find_plan(session, request["plan"], field="plan")
        if plan.state != EFFECTIVE:
            raise Conflict(f"{plan.number} is {plan.state}; inspections use effective plans",
                           extra={"state": plan.state})
        return plan
    stage = request.get("stage")
    if stage is None:
        raise InvalidInput("name the plan, or the stage to find the effective plan",
                           field="stage")
    plan = effective_plan(session, material.id, stage, request.get("operation"))
    if plan is None:
        where = f" at {request['operation']}" if request.get("operation") else ""
        raise Conflict(f"{material.number} has no effective {stage} inspection plan{where}",
                       extra={"material": material.number, "stage": stage})
    return plan


def _check_target(plan: InspectionPlan, lot: Lot | None, batch: Batch | None,
                  request: Mapping[str, Any]) -> None:
    if plan.material_id != (lot or batch).material_id:
        raise InvalidInput(f"{plan.number} is a plan for {plan.material.number}, not "
                           f"{(lot or batch).material.number}", field="plan")
    if request.get("stage") is not None and request["stage"] != plan.stage:
        raise InvalidInput(f"{plan.number} is a {plan.stage} plan", field="stage")
    if request.get("operation") is not None and request["operation"] != plan.operation:
        raise InvalidInput(f"{plan.number} is not a plan for operation {request['operation']!r}",
                           field="operation")
    if plan.stage == INCOMING and lot is None:
        raise InvalidInput("an incoming inspection inspects a received lot: name its "
                           "lot_number", field="lot_number")
    if plan.stage != INCOMING and batch is None:
        raise InvalidInput(f"a {plan.stage} inspection inspects a batch: name its batch_number",
                           field="batch_number")
    if lot is not None and lot.origin != "received":
        raise InvalidInput(f"lot {lot.number} was produced here; inspect its batch",
                           field="lot_number")
    if lot is not None and lot.state != "quarantine":
        raise Conflict(f"lot {lot.number} is {lot.state}; incoming inspection is for lots in "
                       "quarantine", extra={"lot_status": lot.state})
    if batch is not None and batch.state == "cancelled":
        raise Conflict(f"batch {batch.number} is cancelled", extra={"state": batch.state})


def _refuse_duplicate(session: Session, plan: InspectionPlan, lot: Lot | None,
                      batch: Batch | None) -> None:
    """One undecided inspection per lot (incoming), per batch and operation, per batch
    (final)."""
    query = select(Inspection.number).where(Inspection.stage == plan.stage,
                                            Inspection.state.in_(UNDECIDED_STATES))
    if lot is not None:
        query = query.where(Inspection.lot_id == lot.id)
    else:
        query = query.where(Inspection.batch_id == batch.id)
        query = query.where(Inspection.operation.is_(None) if plan.operation is None
                            else Inspection.operation == plan.operation)
    existing = session.scalar(query)
    if existing is not None:
        raise Conflict(f"{existing} already inspects {(lot or batch).number}; it awaits its "
                       "usage decision", extra={"inspection": existing})


def undecided_incoming(session: Session, lot_id: int) -> str | None:
    """The number of the lot's incoming inspection that awaits its usage decision."""
    return session.scalar(select(Inspection.number).where(
        Inspection.lot_id == lot_id, Inspection.stage == INCOMING,
        Inspection.state.in_(UNDECIDED_STATES)))


def list_inspections(session: Session, *, state: str | None = None, stage: str | None = None,
                     lot: str | None = None, batch: str | None = None,
                     material: str | None = None, plan: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[Inspection]:
    """Inspection lots, newest first, filtered by state, stage and the numbers of the lot,
    batch, material and plan."""
    query = select(Inspection).order_by(Inspection.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Inspection.state == state)
    if stage is not None:
        query = query.where(Inspection.stage == stage)
    for column, model, number in ((Inspection.lot_id, Lot, lot),
                                  (Inspection.batch_id, Batch, batch),
                                  (Inspection.material_id, Material, material),
                                  (Inspection.plan_id, InspectionPlan, plan)):
        if number is not None:
            query = query.where(column == select(model.id).where(
                model.number == number).scalar_subquery())
    return list(session.scalars(query))
