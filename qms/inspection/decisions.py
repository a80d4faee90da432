"""The rules and consequences of an inspection's workflow: completion needs every sample
recorded; an accept with nonconforming results needs a reason; an incoming usage decision
releases or rejects the lot; a deviation can be raised from an inspection with
nonconforming results or a rejection; QA's manual disposition of a lot waits for its incoming
inspection, and a produced lot is released only once every inspection of its batch is accepted
(or cancelled). Flushes, never commits."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.erp.outbox import write_event
from qms.esign.service import signature_of_current_version
from qms.errors import Conflict, InvalidInput
from qms.identity.models import User
from qms.inspection.models import USAGE_DECISIONS, Inspection, Stage
from qms.inspection.results import summary
from qms.inspection.service import undecided_incoming
from qms.dates import today
from qms.materials.models import Lot
from qms.records.service import revise_record
from qms.records.workflow import Transition

LOT_STATUS_BY_DECISION = {"accepted": "released", "rejected": "rejected"}
DEVIATION_STATES = ("in_progress", "completed", "accepted", "rejected")


def before_inspection_transition(session: Session, inspection: Inspection,
                                 transition: Transition, actor: User,
                                 reason: str | None) -> None:
    """Refuse completing with samples missing (409, listing them) and accepting with
    nonconforming results without a reason (422 naming ``reason``). A usage decision locks
    the inspected lot first."""
    if transition.target in LOT_STATUS_BY_DECISION:
        _lock_lot(session, inspection)
    if transition.target == "completed":
        _require_every_sample(inspection)
    if transition.target == "accepted" and reason is None:
        count = summary(inspection)["nonconforming_results"]
        if count:
            raise InvalidInput(f"{inspection.number} has {count} nonconforming result(s); "
                               "accepting it needs a reason", field="reason")


def _lock_lot(session: Session, inspection: Inspection) -> None:
    """Lock the inspected lot row (PostgreSQL) before the transition's audit event takes
    the audit head lock: every other path (manual disposition, holds, expiry) locks the lot
    first and then the head, so taking them in the other order here could deadlock when
    after_inspection_transition updates the lot."""
    if inspection.lot_id is not None:
        session.execute(select(Lot.id).where(Lot.id == inspection.lot_id).with_for_update())


def _require_every_sample(inspection: Inspection) -> None:
    missing = {c["code"]: c["required"] - c["recorded"]
               for c in summary(inspection)["characteristics"] if c["recorded"] < c["required"]}
    if missing:
        listed = ", ".join(f"{code} ({count})" for code, count in missing.items())
        raise Conflict(f"{inspection.number} needs a result on every one of its "
                       f"{inspection.sample_size} samples; missing: {listed}",
                       extra={"missing": missing})


def after_inspection_transition(session: Session, inspection: Inspection,
                                transition: Transition, actor: User,
                                reason: str | None) -> None:
    """An incoming usage decision releases (A) or rejects (R) the inspected lot, as a new
    version of the lot naming the inspection (qms.materials.holds.set_lot_status); every
    usage decision is an ERP event ``inspection.decided`` about the inspected lot (the
    batch's lot for a batch inspection), after the lot's own status change."""
    status = LOT_STATUS_BY_DECISION.get(transition.target)
    if status is None:
        return
    from qms.materials.holds import set_lot_status

    code = USAGE_DECISIONS[transition.target]
    signature = signature_of_current_version(session, inspection)
    if inspection.stage == Stage.INCOMING.value and inspection.lot is not None:
        because = f"usage decision {code} of incoming inspection {inspection.number}"
        set_lot_status(session, inspection.lot, actor.username, status,
                       because=f"{because}: {reason}" if reason else because,
                       details={"inspection": inspection.number, "usage_decision": code},
                       signature=signature)
    lot = inspection.lot or inspection.batch.lot
    write_event(session, "inspection.decided", lot, actor=actor.username,
                batch=inspection.batch.number if inspection.batch else None,
                inspection=inspection.number, usage_decision=code, signature=signature,
                reason=reason)


def refuse_manual_disposition(session: Session, lot: Lot, transition: Transition,
                              actor: User) -> None:
    """The lot_disposition_checks callback: while the lot's incoming inspection awaits its
    usage decision, that decision disposes of the lot, not a manual release or reject. (A
    produced lot is released by its batch's release decision, whose gates judge the batch's
    inspections: qms.release.)"""
    number = undecided_incoming(session, lot.id)
    if number is not None:
        raise Conflict(f"lot {lot.number} is under incoming inspection {number}; its usage "
                       f"decision releases or rejects the lot (cancel the inspection first "
                       f"to {transition.action} it by hand)", extra={"inspection": number})


def raise_inspection_deviation(session: Session, inspection: Inspection, actor: User,
                               fields: Mapping[str, Any]):
    """Raise a deviation naming the inspected lot (incoming) or batch, which goes on hold,
    and link it to the inspection in a new version (event ``inspection.deviation.raised``).
    Only for an inspection with a nonconforming current result or a rejection, once."""
    if inspection.deviation is not None:
        raise Conflict(f"{inspection.number} already raised {inspection.deviation}",
                       extra={"deviation": inspection.deviation})
    if inspection.state not in DEVIATION_STATES or not _has_cause(inspection):
        raise Conflict(f"{inspection.number} has no nonconforming result and is not "
                       "rejected; there is nothing to deviate from",
                       extra={"state": inspection.state})
    from qms.deviations.service import raise_deviation

    values = {"kind": "unplanned", "occurred_on": today(),
              "title": f"Nonconformity found by inspection {inspection.number}", **fields}
    lots = [inspection.lot.number] if inspection.batch is None else []
    batches = [inspection.batch.number] if inspection.batch is not None else []
    deviation = raise_deviation(session, actor, values, lots, batch_numbers=batches)
    revise_record(session, inspection, actor.username, action="raise_deviation",
                  reason=f"deviation {deviation.number} raised",
                  changes={"deviation": deviation.number},
                  details={"deviation": deviation.number},
                  event=AuditAction.Inspection.DEVIATION_RAISED)
    return deviation


def _has_cause(inspection: Inspection) -> bool:
    return inspection.state == "rejected" or summary(inspection)["nonconforming_results"] > 0
