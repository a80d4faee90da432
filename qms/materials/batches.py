"""Batches and the genealogy: producing a batch creates its output lot (same number, in
quarantine) and the batch record, then records the lots it consumed as genealogy edges.

Consumption rules (each refusal names the input by index, ``inputs.N.<field>``, with 422,
and nothing is written): the input lot exists, is ``released``, is not past its expiry date
(even before the expiry job has run), is counted in the unit given (if any), is not the
batch's own lot nor downstream of it (no cycles), and the quantity is more than zero and at
most what is left of the lot, counting earlier inputs of the same request. Every function
flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.trail import connection_of, lock_head
from qms.audit_actions import AuditAction
from qms.db import utcnow
from qms.errors import Conflict, InvalidInput
from qms.identity.models import User
from qms.dates import today
from qms.materials.holds import lock_lots
from qms.materials.models import (BATCH_EDIT, BATCHES, LOTS, Batch, Lot, LotConsumption,
                                  LotOrigin, LotStatus, Material, MaterialKind)
from qms.materials.numbering import NumberingRules, next_number
from qms.materials.service import (expiry, lot_exists, material_by_code, require_active,
                                   require_in_date, require_unit)
from qms.materials.trace import Direction, reachable_ids
from qms.records.service import create_record, required_reason, revise_record, update_record
from qms.records.workflow import Workflow, WorkflowRegistry

PRODUCIBLE_KINDS = (MaterialKind.INTERMEDIATE.value, MaterialKind.FINISHED.value)
IN_PRODUCTION = "in_production"
# a booking error is corrected before production signs the batch record as reviewed
REVERSIBLE_STATES = (IN_PRODUCTION, "produced")


@dataclass(frozen=True)
class Consumption:
    """One checked input: ``quantity`` of ``lot`` (in the lot's unit)."""
    lot: Lot
    quantity: Decimal


def produce_batch(session: Session, workflows: WorkflowRegistry, numbering: NumberingRules,
                  actor: User, fields: Mapping[str, Any], *, on: date | None = None) -> Batch:
    """A new batch in production of an intermediate or finished material, numbered by the
    batch rule, with its output lot (origin produced, quarantine, same number), consuming
    ``inputs`` [{"lot_number", "quantity", "unit"?}]. Everything is checked before anything
    is written."""
    current = on or today()
    material = material_by_code(session, fields["material"])
    require_active(material)
    if material.kind not in PRODUCIBLE_KINDS:
        raise InvalidInput(f"{material.number} is a {material.kind} material: batches produce "
                           "intermediate or finished materials", field="material")
    require_unit(material, fields["unit"])
    produced_on = fields.get("produced_on") or current
    if produced_on > current:
        raise InvalidInput("produced_on cannot be in the future", field="produced_on")
    expires_on = expiry(material, produced_on, fields.get("expires_on"))
    require_in_date(expires_on, current)
    inputs = checked_inputs(session, None, fields.get("inputs") or [], current)
    number = next_number(session, numbering.batch, {"material": material.number,
                                                    "line": fields["line"]},
                         produced_on, taken=lambda n: lot_exists(session, n))
    lot = create_record(session, workflows.get(LOTS.name), actor, {
        "material": material, "supplier": None, "origin": LotOrigin.PRODUCED.value,
        "supplier_lot": None, "quantity": fields["quantity"], "unit": fields["unit"],
        "received_on": None, "expires_on": expires_on}, number=number)
    batch = create_record(session, workflows.get(BATCHES.name), actor, {
        "material": material, "lot": lot, "line": fields["line"],
        "quantity": fields["quantity"], "unit": fields["unit"], "produced_on": produced_on},
        number=number)
    if inputs:
        _consume(session, batch, actor, inputs, reason=None)
    return batch


def edit_batch(session: Session, workflow: Workflow, batch: Batch, actor: User,
               changes: Mapping[str, Any], reason: str | None, *,
               expected_version: int | None = None) -> Batch:
    """Correct the batch record in production or produced (update_record's rules), including
    its output lot's expiry date: the batch gets a new version naming it, so the editor is an
    author of the batch and a signature on the old version no longer matches; the lot gets a
    new version in the same transaction (``batch_edit``, with the batch version). The expiry
    is never before the production date (422), and the lot must still be in quarantine
    (409). Flushes, never commits."""
    lot = batch.lot
    expiry_changes = "expires_on" in changes and changes["expires_on"] != lot.expires_on
    if expiry_changes and workflow.is_editable(batch.state):  # else update_record refuses
        # the lot before the audit head, as on every path that changes a lot
        lot = lock_lots(session, {batch.lot_id})[0]
        if lot.state != LotStatus.QUARANTINE.value:
            raise Conflict(f"lot {lot.number} is {lot.state}; its expiry date is corrected "
                           "only while it is in quarantine", extra={"lot_status": lot.state})
    update_record(session, workflow, batch, actor, changes, reason,
                  expected_version=expected_version)
    if expiry_changes:
        # the batch edit set the lot's date (Batch.expires_on); the lot records it as its own
        revise_record(session, lot, actor.username, action=BATCH_EDIT,
                      reason=required_reason(reason), changes={"expires_on": lot.expires_on},
                      details={"batch": batch.number, "batch_version": batch.version})
    return batch


def add_batch_inputs(session: Session, batch: Batch, actor: User,
                     inputs: Sequence[Mapping[str, Any]], *, reason: str | None = None,
                     on: date | None = None) -> Batch:
    """Record more consumed lots on a batch still in production (409 otherwise); one new
    version of the batch listing every input."""
    if batch.state != IN_PRODUCTION:
        raise Conflict(f"batch {batch.number} is {batch.state}; inputs are recorded only "
                       "while it is in production", extra={"state": batch.state})
    if not inputs:
        raise InvalidInput("name at least one input lot", field="inputs")
    checked = checked_inputs(session, batch, inputs, on or today())
    _consume(session, batch, actor, checked, reason=reason)
    return batch


def reverse_batch_input(session: Session, batch: Batch, actor: User, lot_number: str,
                        quantity: Decimal, reason: str | None) -> Batch:
    """Correct a consumption booked in error: a reversing entry (negative quantity) with a
    mandatory reason, beside the original, which stays (nothing in the genealogy is deleted
    or edited). Only before the release decision (in production or produced; 409 after);
    at most the quantity of the lot the batch consumed net (422 naming the field)."""
    if batch.state not in REVERSIBLE_STATES:
        raise Conflict(f"batch {batch.number} is {batch.state}; consumption is corrected only "
                       "before review for release (return the batch to production first)",
                       extra={"state": batch.state})
    reason = required_reason(reason)
    lot = _locked_lots(session, [lot_number]).get(lot_number)
    if lot is None:
        raise InvalidInput(f"no lot {lot_number!r}", field="lot_number")
    entries = list(session.scalars(select(LotConsumption.quantity).where(
        LotConsumption.batch_id == batch.id, LotConsumption.input_lot_id == lot.id)))
    if not entries:
        raise InvalidInput(f"lot {lot_number} is not an input of batch {batch.number}",
                           field="lot_number")
    consumed = sum(entries, Decimal(0))
    if quantity > consumed:
        raise InvalidInput(f"batch {batch.number} consumed {consumed} {lot.unit} of lot "
                           f"{lot_number}; no more can be reversed", field="quantity")
    _consume(session, batch, actor, [Consumption(lot, -quantity)], reason=reason,
             action="reverse", event=AuditAction.Batch.LOT_CONSUMPTION_REVERSED)
    return batch


def _consume(session: Session, batch: Batch, actor: User, inputs: list[Consumption], *,
             reason: str | None, action: str = "consume",
             event: str = AuditAction.Batch.LOT_CONSUMED) -> None:
    # entries are numbered under the audit head lock, so ids commit in order: the trace's
    # in-memory index catches up by reading the ids above the last it holds (genealogy.py)
    lock_head(connection_of(session))
    now = utcnow()
    for entry in inputs:
        session.add(LotConsumption(batch_id=batch.id, input_lot_id=entry.lot.id,
                                   output_lot_id=batch.lot_id, quantity=entry.quantity,
                                   unit=entry.lot.unit, consumed_at=now,
                                   consumed_by=actor.username, reason=reason))
    session.flush()
    consumed = [{"lot": entry.lot.number, "quantity": str(entry.quantity),
                 "unit": entry.lot.unit} for entry in inputs]
    reason = reason or f"{len(inputs)} input lot(s) consumed in production"
    revise_record(session, batch, actor.username, action=action, reason=reason,
                  details={"consumed": consumed}, event=event)


def checked_inputs(session: Session, batch: Batch | None,
                   inputs: Sequence[Mapping[str, Any]], on: date) -> list[Consumption]:
    """Every input checked against the consumption rules, the input lots locked (PostgreSQL,
    in id order, so that two batches consuming the same lots cannot deadlock). Raises one
    InvalidInput naming every refused input; writes nothing."""
    lots = _locked_lots(session, [entry["lot_number"] for entry in inputs])
    left = _quantities_left(session, lots.values())
    downstream = set(reachable_ids(session, batch.lot_id, Direction.FORWARD)) if batch else set()
    errors: dict[str, list[str]] = {}
    checked = []
    for index, entry in enumerate(inputs):
        lot = lots.get(entry["lot_number"])
        problems = _input_problems(lot, entry, batch, downstream, left, on)
        for field, message in problems:
            errors.setdefault(f"inputs.{index}.{field}", []).append(message)
        if not problems:
            left[lot.id] -= entry["quantity"]
            checked.append(Consumption(lot, entry["quantity"]))
    if errors:
        raise InvalidInput("some input lots cannot be consumed", errors=errors)
    return checked


def _input_problems(lot: Lot | None, entry: Mapping[str, Any], batch: Batch | None,
                    downstream: set[int], left: dict[int, Decimal], on: date
                    ) -> list[tuple[str, str]]:
    """(field, problem) for one input; empty when it can be consumed."""
    number, quantity = entry["lot_number"], entry["quantity"]
    if lot is None:
        return [("lot_number", f"no lot {number!r}")]
    if batch is not None and (lot.id == batch.lot_id or lot.id in downstream):
        return [("lot_number", f"lot {number} is made from batch {batch.number}; consuming "
                               "it would make the genealogy a cycle")]
    if lot.state != LotStatus.RELEASED.value:
        return [("lot_number", f"lot {number} is {lot.state}; only released lots can be "
                               "consumed")]
    if lot.is_expired_on(on):
        return [("lot_number", f"lot {number} expired on {lot.expires_on.isoformat()}")]
    problems = []
    if entry.get("unit") is not None and entry["unit"] != lot.unit:
        problems.append(("unit", f"lot {number} is counted in {lot.unit}, not "
                                 f"{entry['unit']!r} (units are not converted)"))
    if quantity <= 0:
        problems.append(("quantity", "must be greater than zero"))
    elif quantity > left[lot.id]:
        problems.append(("quantity", f"only {left[lot.id]} {lot.unit} of lot {number} "
                                     "is left"))
    return problems


def _locked_lots(session: Session, numbers: list[str]) -> dict[str, Lot]:
    query = (select(Lot).where(Lot.number.in_(sorted(set(numbers)))).order_by(Lot.id)
             .with_for_update(of=Lot))
    return {lot.number: lot for lot in session.scalars(query)}


def _quantities_left(session: Session, lots) -> dict[int, Decimal]:
    """Lot quantity minus everything consumed from it (summed exactly, in Python: the
    quantities are decimal text, which SQL would sum as floats or not at all)."""
    left = {lot.id: lot.quantity for lot in lots}
    rows = session.execute(select(LotConsumption.input_lot_id, LotConsumption.quantity)
                           .where(LotConsumption.input_lot_id.in_(list(left))))
    for lot_id, quantity in rows:
        left[lot_id] -= quantity
    return left


def list_batches(session: Session, *, state: str | None = None, status: str | None = None,
                 material: str | None = None, line: str | None = None, limit: int = 100,
                 offset: int = 0) -> list[Batch]:
    """Batches, newest first, filtered by batch state, output lot status, material, line."""
    query = select(Batch).order_by(Batch.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Batch.state == state)
    if status is not None:
        query = query.where(Batch.lot_id.in_(select(Lot.id).where(Lot.state == status)))
    if material is not None:
        query = query.where(Batch.material_id == select(Material.id).where(
            Material.number == material).scalar_subquery())
    if line is not None:
        query = query.where(Batch.line == line)
    return list(session.scalars(query))
