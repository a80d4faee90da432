"""Deviations: raising one (naming the lots and batches it affects, which go on hold), editing
it by state, naming more lots, the rules of its transitions, and releasing the holds when it
ends. Every function flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.capa.models import Capa, CapaSource
from qms.deviations.models import (DESCRIPTION_FIELDS, FINISHED_STATES, INVESTIGATION_FIELDS,
                                   OPEN_STATES, Deviation, DeviationLot,
                                   DeviationLotRemoval, NamedAs, named_now)
from qms.errors import Conflict, InvalidInput, NotPermitted
from qms.identity.models import User
from qms.identity.roles import RoleTable
from qms.materials.holds import lift_hold, lock_lots, put_on_hold
from qms.materials.models import Batch, Lot
from qms.records.service import create_record, required_reason, revise_record, update_record
from qms.records.workflow import Transition, Workflow

# a batch on hold keeps its lot held whatever deviations end (config/workflows.toml)
BATCH_ON_HOLD = "on_hold"

# the states in which the lots a deviation names may still grow
NAMING_STATES = ("open", "in_investigation")
# which fields may be edited in which state, and the permission that edits them
EDITS_BY_STATE = {"open": (DESCRIPTION_FIELDS, "deviation.raise"),
                  "in_investigation": (INVESTIGATION_FIELDS, "deviation.investigate")}
CLOSURE_NEEDS = ("root_cause", "impact_assessment")


def create_deviation(session: Session, workflow: Workflow, actor: User,
                     fields: Mapping[str, Any], *, lots: Sequence[str] = (),
                     batches: Sequence[str] = ()) -> Deviation:
    """Raise a deviation (version 1, state open, DEV-YYYY-NNNNN) and, when it names lots or
    batches, name them in version 2 and put each lot on hold. Unknown lot or batch numbers
    are refused (422 naming ``lots.<i>`` / ``batches.<i>``) before anything is written."""
    named = resolve_lots(session, lots, batches)
    cleaned = {name: value.strip() if isinstance(value, str) else value
               for name, value in fields.items()}
    deviation = create_record(session, workflow, actor, cleaned)
    if named:
        _name(session, deviation, actor.username, named, reason="named when raised")
    return deviation


def raise_deviation(session: Session, actor: User, fields: Mapping[str, Any],
                    lot_numbers: Sequence[str], *,
                    batch_numbers: Sequence[str] = ()) -> Deviation:
    """For other modules (an incoming inspection rejected or accepted with nonconforming
    results): raise a deviation naming these lots, which go on hold. ``fields`` are title,
    description, kind, severity and occurred_on. Flushes, never commits."""
    from qms.context import state  # the app's workflows, inside a request or job

    return create_deviation(session, state().workflows.get("deviation"), actor, fields,
                            lots=lot_numbers, batches=batch_numbers)


def resolve_lots(session: Session, lots: Sequence[str],
                 batches: Sequence[str]) -> list[tuple[Lot, str]]:
    """(lot, named_as) for each lot and each batch's output lot, once per lot (a lot named
    both ways counts as named by its batch), rows locked for the hold. Unknown numbers ->
    InvalidInput naming each by its position."""
    outputs = {batch.number: batch.lot_id for batch in session.scalars(
        select(Batch).where(Batch.number.in_(set(batches))))}
    # one lock statement, in id order, for the lots and the batches' output lots: two
    # deviations naming overlapping lots take their locks in the same order
    lot_numbers, batch_lot_ids = set(lots), set(outputs.values())
    locked = session.scalars(select(Lot).where(or_(
        Lot.number.in_(lot_numbers), Lot.id.in_(batch_lot_ids)))
        .order_by(Lot.id).with_for_update(of=Lot)).all()
    found = {lot.number: lot for lot in locked if lot.number in lot_numbers}
    errors = {f"lots.{i}": [f"no lot {number!r}"] for i, number in enumerate(lots)
              if number not in found}
    errors.update({f"batches.{i}": [f"no batch {number!r}"] for i, number in enumerate(batches)
                   if number not in outputs})
    if errors:
        raise InvalidInput("the deviation names lots or batches that do not exist",
                           errors=errors)
    named = {lot.id: (lot, NamedAs.BATCH.value) for lot in locked if lot.id in batch_lot_ids}
    for lot in found.values():
        named.setdefault(lot.id, (lot, NamedAs.LOT.value))
    return sorted(named.values(), key=lambda pair: pair[0].number)


def name_lots(session: Session, deviation: Deviation, actor: User, *, lots: Sequence[str],
              batches: Sequence[str], reason: str | None) -> Deviation:
    """Name more lots or batches while the deviation is open or in investigation: a new
    version listing them, and each lot on hold. Lots already named are left out; naming
    nothing new is refused (422)."""
    if deviation.state not in NAMING_STATES:
        raise Conflict(f"{deviation.number} is {deviation.state}; lots can be named only while "
                       f"{' or '.join(NAMING_STATES)}", extra={"state": deviation.state})
    reason = required_reason(reason)
    removed = {link.lot_id: link.lot.number for link in deviation.lot_links
               if link.removal is not None}
    wanted = resolve_lots(session, lots, batches)
    again = sorted(removed[lot.id] for lot, _ in wanted if lot.id in removed)
    if again:
        raise InvalidInput(f"{', '.join(again)} was removed from {deviation.number} as named "
                           "by mistake; raise a new deviation for it", field="lots")
    already = {link.lot_id for link in deviation.lot_links}
    new = [(lot, how) for lot, how in wanted if lot.id not in already]
    if not new:
        raise InvalidInput("the deviation already names every one of these", field="lots")
    _name(session, deviation, actor.username, new, reason=reason)
    return deviation


def _name(session: Session, deviation: Deviation, actor: str,
          named: Iterable[tuple[Lot, str]], *, reason: str) -> None:
    named = list(named)
    for lot, how in named:
        deviation.lot_links.append(DeviationLot(lot=lot, named_as=how, added_by=actor))
    session.flush()
    revise_record(session, deviation, actor, action="name_lots", reason=reason,
                  event=AuditAction.Deviation.LOTS_NAMED,
                  details={"named": [{"number": lot.number, "named_as": how}
                                     for lot, how in named]})
    for lot, _ in named:
        put_on_hold(session, lot, actor, because=f"named by deviation {deviation.number}")


def remove_lot(session: Session, deviation: Deviation, actor: User, lot_number: str,
               reason: str | None) -> Deviation:
    """A lot (or batch) named by mistake leaves the deviation while it is open or in
    investigation: the link stays with a removal beside it (who, when, why), the deviation
    gets a new version without it, and the lot's hold ends unless another open deviation
    names it or its batch is on hold. Unknown or not named -> 422 naming lot_number."""
    if deviation.state not in NAMING_STATES:
        raise Conflict(f"{deviation.number} is {deviation.state}; lots can be removed only "
                       f"while {' or '.join(NAMING_STATES)}", extra={"state": deviation.state})
    reason = required_reason(reason)
    link = next((link for link in deviation.named_links if link.lot.number == lot_number),
                None)
    if link is None:
        raise InvalidInput(f"{deviation.number} does not name {lot_number!r}",
                           field="lot_number")
    lot, = lock_lots(session, [link.lot_id])
    link.removal = DeviationLotRemoval(removed_by=actor.username, reason=reason)
    session.flush()
    revise_record(session, deviation, actor.username, action="remove_lot", reason=reason,
                  event=AuditAction.Deviation.LOT_REMOVED,
                  details={"removed": {"number": lot.number, "named_as": link.named_as}})
    if lot.state == "on_hold" and lot.id not in _held_otherwise(session, [lot.id]):
        lift_hold(session, lot, actor.username,
                  because=f"removed from deviation {deviation.number}: {reason}")
    return deviation


def _held_otherwise(session: Session, lot_ids: list[int]) -> set[int]:
    """Of these lots, those an open deviation names or whose batch is on hold."""
    held = {link.lot_id for other in open_deviations_naming(session, lot_ids)
            for link in other.named_links}
    held.update(session.scalars(select(Batch.lot_id).where(
        Batch.lot_id.in_(lot_ids), Batch.state == BATCH_ON_HOLD)))
    return held


def edit_deviation(session: Session, workflow: Workflow, roles: RoleTable,
                   deviation: Deviation, actor: User, changes: Mapping[str, Any],
                   reason: str | None, *, expected_version: int | None = None) -> Deviation:
    """Change the description while open (deviation.raise), the investigation while in
    investigation (deviation.investigate); a reason is required. Fields of the other state
    are refused (422 naming them); nothing is editable once submitted for closure (409)."""
    if deviation.state not in EDITS_BY_STATE:
        raise Conflict(f"{deviation.number} is {deviation.state}; it can be edited only in "
                       f"{', '.join(EDITS_BY_STATE)}", extra={"state": deviation.state})
    allowed, permission = EDITS_BY_STATE[deviation.state]
    wrong = {f"changes.{name}": [f"{name} cannot be edited while the deviation is "
                                 f"{deviation.state}"]
             for name in changes if name not in allowed}
    if wrong:
        raise InvalidInput("the request names fields that cannot be set now", errors=wrong)
    if not roles.allows(actor.roles, permission):
        raise NotPermitted(f"editing a deviation {deviation.state} needs permission "
                           f"{permission!r}")
    cleaned = {name: value.strip() if isinstance(value, str) else value
               for name, value in changes.items()}
    return update_record(session, workflow, deviation, actor, cleaned, reason,
                         expected_version=expected_version)


def before_deviation_transition(session: Session, deviation: Deviation,
                                transition: Transition, actor: User,
                                reason: str | None) -> None:
    """Refuse (409) a submission for closure before the investigation is complete, and a
    closure that needs a CAPA without a linked, not cancelled one. A transition that ends
    the deviation locks its lots here, before the transition's audit event takes the audit
    head lock (see lock_named_lots)."""
    if transition.action == "submit_for_closure":
        missing = [name for name in CLOSURE_NEEDS if not getattr(deviation, name).strip()]
        if deviation.capa_required is None:
            missing.append("capa_required")
        if missing:
            raise Conflict(f"{deviation.number} cannot be submitted for closure before "
                           f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                           "recorded", extra={"missing": missing})
    if transition.target == "closed" and deviation.capa_required:
        # no CAPA can be cancelled under this check: the transition holds the deviation's
        # row lock, and cancelling a CAPA of a deviation takes that lock before deciding
        # (qms.capa.service.refuse_orphaning_cancel). Locking the CAPA rows here as well
        # would take CAPA after deviation where the cancel takes deviation after CAPA: a
        # deadlock between a closure and a cancel running at once.
        if not [capa for capa in linked_capas(session, deviation)
                if capa.state != "cancelled"]:
            raise Conflict(f"{deviation.number} requires a CAPA: link one (a CAPA with source "
                           f"deviation and reference {deviation.number}) before closing",
                           extra={"missing": ["capa"]})
    if transition.target in FINISHED_STATES:
        lock_named_lots(session, deviation)


def after_deviation_transition(session: Session, deviation: Deviation,
                               transition: Transition, actor: User,
                               reason: str | None) -> None:
    """When the deviation ends (closed or cancelled), its lots come off hold, except those
    that another open deviation still names."""
    if transition.target in FINISHED_STATES:
        release_holds(session, deviation, actor.username)


def lock_named_lots(session: Session, deviation: Deviation) -> list[Lot]:
    """Lock (PostgreSQL) the lots the deviation names, in id order. Every path that changes
    a lot and writes an audit event locks the lot first and the audit head second; ending a
    deviation must too, so its lots are locked before the transition's event, not only
    when release_holds lifts the holds after it."""
    return lock_lots(session, [link.lot_id for link in deviation.named_links])


def release_holds(session: Session, deviation: Deviation, actor: str) -> list[str]:
    """Lift the hold of every lot the finished deviation names and no open deviation does,
    unless the lot is the output of a batch that is itself on hold (its unhold lifts it).
    Returns the lot numbers released from hold."""
    lot_ids = [link.lot_id for link in deviation.named_links]
    # the lots are locked (already, by before_deviation_transition) before asking who else
    # names them, so that two deviations ending at once cannot each leave the lot to the other
    lots = lock_named_lots(session, deviation)
    still_held = _held_otherwise(session, lot_ids)
    lifted = []
    for lot in lots:
        if lot.id not in still_held and lot.state == "on_hold":
            lift_hold(session, lot, actor,
                      because=f"deviation {deviation.number} {deviation.state}")
            lifted.append(lot.number)
    return lifted


def open_deviations_naming(session: Session, lot_ids: Iterable[int]) -> list[Deviation]:
    """Deviations not closed nor cancelled that name any of these lots (a batch is named
    through its output lot), by number. One look-up on ix_deviation_lots_lot_deviation."""
    ids = set(lot_ids)
    if not ids:
        return []
    named = select(DeviationLot.deviation_id).where(DeviationLot.lot_id.in_(ids), named_now())
    return list(session.scalars(select(Deviation).where(
        Deviation.id.in_(named), Deviation.state.in_(OPEN_STATES)).order_by(Deviation.number)))


def linked_capas(session: Session, deviation: Deviation) -> list[Capa]:
    """The CAPAs raised with this deviation as their source, by number."""
    return list(session.scalars(select(Capa).where(
        Capa.source == CapaSource.DEVIATION.value, Capa.source_reference == deviation.number)
        .order_by(Capa.number)))


def list_deviations(session: Session, *, state: str | None = None,
                    severity: str | None = None, kind: str | None = None,
                    lot: str | None = None, limit: int = 100,
                    offset: int = 0) -> list[Deviation]:
    """Deviations, newest first, filtered by state, severity, kind and a named lot number."""
    query = select(Deviation).order_by(Deviation.id.desc()).limit(limit).offset(offset)
    for column, value in ((Deviation.state, state), (Deviation.severity, severity),
                          (Deviation.kind, kind)):
        if value is not None:
            query = query.where(column == value)
    if lot is not None:
        query = query.where(Deviation.id.in_(
            select(DeviationLot.deviation_id).join(Lot, Lot.id == DeviationLot.lot_id)
            .where(Lot.number == lot)))
    return list(session.scalars(query))
