"""The release decision of a batch: the release check, the rules of the batch's transitions
and their consequences for the lot it produced.

A batch is released only when every gate that applies to its material kind passes (409
``release-gates-failed`` listing the failing gates, before anything is written). Release and
rejection set the lot's status (qms.materials.holds.set_lot_status); a hold puts the lot on
hold and the end of the batch's hold lifts it, unless an open deviation still names the lot.
The lots a transition changes are locked (PostgreSQL, in id order) before the transition's
audit event takes the audit head lock, as on every path that changes a lot. Flushes, never
commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from qms.deviations.service import open_deviations_naming
from qms.erp.outbox import usage_decision_of, write_event
from qms.errors import Conflict
from qms.esign.service import signature_of_current_version
from qms.esign.models import Signature
from qms.identity.models import User
from qms.inspection.models import INSPECTIONS, Inspection, InspectionResult
from qms.materials.holds import (DECISION_SOURCES, ON_HOLD, QUARANTINE, REJECTED, RELEASED,
                                 lift_hold, lock_lots, put_on_hold, set_lot_status)
from qms.materials.models import Batch, Lot, LotConsumption
from qms.records.models import RecordVersion
from qms.records.service import authors_of
from qms.records.workflow import Transition
from qms.release.config import ReleaseRules
from qms.release.facts import release_facts
from qms.release.gates import Gate, evaluate

EXTENSION = "qms.release"  # app.extensions key of the ReleaseRules loaded at start-up
PERFORMED = "performed"


class ReleaseGatesFailed(Conflict):
    code, title = "release-gates-failed", "Release gates failed"


@dataclass(frozen=True)
class ReleaseCheck:
    batch: str
    state: str
    material_kind: str
    gates: tuple[Gate, ...]

    @property
    def ready(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failing(self) -> list[Gate]:
        return [gate for gate in self.gates if not gate.passed]


def release_rules() -> ReleaseRules:
    """The gates per material kind of the running application (config/release.toml)."""
    return current_app.extensions[EXTENSION]


def release_check(session: Session, batch: Batch, rules: ReleaseRules, *,
                  today: date | None = None) -> ReleaseCheck:
    """Every gate that applies to the batch's material kind, passed or not, with its detail.
    Reads only."""
    kind = batch.material.kind
    gates = evaluate(release_facts(session, batch, today=today), rules.gates_for(kind))
    return ReleaseCheck(batch.number, batch.state, kind, tuple(gates))


def gate_document(gate: Gate) -> dict:
    return {"code": gate.code, "passed": gate.passed, "detail": gate.detail}


def require_gates(session: Session, batch: Batch, rules: ReleaseRules) -> None:
    """ReleaseGatesFailed (409, its ``gates`` member listing the failing gates) unless every
    gate passes."""
    check = release_check(session, batch, rules)
    if check.ready:
        return
    codes = ", ".join(gate.code for gate in check.failing)
    raise ReleaseGatesFailed(
        f"batch {batch.number} cannot be released: {len(check.failing)} release gate(s) "
        f"failed ({codes})", extra={"gates": [gate_document(g) for g in check.failing]})


def check_batch_transition(session: Session, batch: Batch, transition: Transition,
                           actor: User, reason: str | None) -> None:
    """The batch's before_transition (registered by qms.release.hooks): lock the lots the
    transition may change, then refuse a release whose gates do not all pass."""
    if _changes_lot(transition):
        lock_batch_lots(session, batch, inputs=transition.target == RELEASED)
    if transition.target == RELEASED:
        require_gates(session, batch, release_rules())


def follow_batch_transition(session: Session, batch: Batch, transition: Transition,
                            actor: User, reason: str | None) -> None:
    """The batch's after_transition: the lot follows a release, a rejection or a hold, and
    comes off a hold that ends (not while an open deviation names it)."""
    if transition.target in (RELEASED, REJECTED):
        _decide_lot(session, batch, transition.target, actor, reason)
        if transition.target == REJECTED:
            _end_batch_hold(session, batch, actor, f"batch {batch.number} rejected")
        batch_decision_final(session, batch, actor, reason)
    elif transition.target == ON_HOLD:
        put_on_hold(session, batch.lot, actor.username,
                    because=_because(f"batch {batch.number} on hold", reason))
    elif ON_HOLD in transition.sources:
        _end_batch_hold(session, batch, actor, _because(f"batch {batch.number} hold lifted",
                                                        reason))


def batch_decision_final(session: Session, batch: Batch, actor: User,
                         reason: str | None) -> None:
    """Once the batch's release decision is final (``batch.state`` released or rejected)
    and its lot has followed it, inside the deciding transaction: the ERP event
    ``batch.released`` / ``batch.rejected`` with the deciding signature."""
    write_event(session, f"batch.{batch.state}", batch.lot, actor=actor.username,
                batch=batch.number, usage_decision=usage_decision_of(batch.state),
                signature=signature_of_current_version(session, batch), reason=reason)


# the production transition that is not a content change but still makes the batch
FINISH = "finish"


def production_people(batch: Batch) -> set[str]:
    """Whoever made the batch: its authors by the one definition (authors_of: created or
    edited it, recorded a consumption or reversed one) and whoever finished it. The batch's
    owners for ``not_owner``, so none of them releases it."""
    session = object_session(batch)
    finishers = session.scalars(select(RecordVersion.changed_by).where(
        RecordVersion.record_type == batch.record_type, RecordVersion.record_id == batch.number,
        RecordVersion.action == FINISH))
    return authors_of(session, batch) | set(finishers)


def inspection_people(batch: Batch) -> set[str]:
    """Whoever opened one of the batch's inspections, recorded or corrected a result of one,
    or signed one as performed: the batch's owners for ``not_owner``, so none of them
    releases it (DESIGN.md "Segregation of duties")."""
    session = object_session(batch)
    inspections = session.execute(select(Inspection.id, Inspection.number, Inspection.created_by)
                                  .where(Inspection.batch_id == batch.id)).all()
    if not inspections:
        return set()
    people = {created_by for _, _, created_by in inspections}
    people.update(session.scalars(select(InspectionResult.recorded_by).where(
        InspectionResult.inspection_id.in_([row.id for row in inspections]))))
    people.update(session.scalars(select(Signature.signer).where(
        Signature.record_type == INSPECTIONS.name, Signature.meaning == PERFORMED,
        Signature.record_id.in_([row.number for row in inspections]))))
    return people


def _changes_lot(transition: Transition) -> bool:
    return transition.target in (RELEASED, REJECTED, ON_HOLD) or ON_HOLD in transition.sources


def lock_batch_lots(session: Session, batch: Batch, *, inputs: bool) -> list[Lot]:
    """Lock (PostgreSQL) the batch's lot and, with ``inputs``, every lot it consumed, in id
    order, and read them afresh: the gates judge them as they are under the lock."""
    ids = {batch.lot_id}
    if inputs:
        ids.update(session.scalars(select(LotConsumption.input_lot_id)
                                   .where(LotConsumption.batch_id == batch.id)))
    return lock_lots(session, ids)


def _decide_lot(session: Session, batch: Batch, status: str, actor: User,
                reason: str | None) -> None:
    """The lot becomes ``status`` (on a held lot: the status it returns to). A lot already so
    is left as it is; so is an expired lot when the batch is rejected (it is unusable as
    it is, and an expired lot is never rejected)."""
    lot = batch.lot
    current = (lot.status_before_hold or QUARANTINE) if lot.state == ON_HOLD else lot.state
    if current == status or (status == REJECTED and current not in DECISION_SOURCES[REJECTED]):
        return
    set_lot_status(session, lot, actor.username, status,
                   because=_because(f"batch {batch.number} {status}", reason),
                   details={"batch": batch.number},
                   signature=signature_of_current_version(session, batch))


def _end_batch_hold(session: Session, batch: Batch, actor: User, because: str) -> None:
    """Lift the lot's hold unless an open deviation names the lot (it holds it then)."""
    lot = batch.lot
    if lot.state != ON_HOLD or open_deviations_naming(session, [lot.id]):
        return
    lift_hold(session, lot, actor.username, because=because)


def _because(what: str, reason: str | None) -> str:
    return f"{what}: {reason}" if reason else what
