"""Lot status changes that follow from other records: a hold while an open deviation names
the lot, a usage decision of an incoming inspection, the expiry job.

None of these is a transition a client can post; each is a new version of the lot with an
audit event naming the cause (qms.records.service.revise_record). The caller decides when:
the deviations module lifts a hold only when no other open deviation names the lot. All
functions flush, never commit.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import SYSTEM_ACTOR
from qms.errors import Conflict
from qms.dates import today as site_today
from qms.materials.hooks import refuse_expired_release
from qms.materials.models import Lot, LotStatus
from qms.records.service import revise_record

QUARANTINE, RELEASED, REJECTED = (LotStatus.QUARANTINE.value, LotStatus.RELEASED.value,
                                  LotStatus.REJECTED.value)
ON_HOLD, EXPIRED = LotStatus.ON_HOLD.value, LotStatus.EXPIRED.value
# where a decision (usage decision, disposition) may move a lot from
DECISION_SOURCES = {RELEASED: {QUARANTINE}, REJECTED: {QUARANTINE, RELEASED}}
# statuses that run out on the expiry date; rejected lots stay rejected
EXPIRING = (QUARANTINE, RELEASED)


def put_on_hold(session: Session, lot: Lot, actor: str, *, because: str) -> None:
    """Put the lot on hold, remembering its status to return to. A lot already on hold
    stays as it is (one hold, however many deviations name it); no version is written."""
    if lot.state == ON_HOLD:
        return
    revise_record(session, lot, actor, action="hold", reason=because, state=ON_HOLD,
                  changes={"status_before_hold": lot.state}, event=AuditAction.Lot.HOLD_PLACED)


def lift_hold(session: Session, lot: Lot, actor: str, *, because: str,
              today: date | None = None) -> None:
    """Return a held lot to the status it had before the hold, or to ``expired`` when that
    status runs out and the expiry date passed during the hold (the expiry job leaves held
    lots alone). A lot that is not on hold is left as it is."""
    if lot.state != ON_HOLD:
        return
    previous = lot.status_before_hold or QUARANTINE
    if previous in EXPIRING and lot.is_expired_on(today or site_today()):
        previous = EXPIRED
    revise_record(session, lot, actor, action="unhold", reason=because, state=previous,
                  changes={"status_before_hold": None}, event=AuditAction.Lot.HOLD_LIFTED)


def lock_lots(session: Session, lot_ids) -> list[Lot]:
    """The lots with these ids, locked (PostgreSQL) in id order and read afresh: the one
    order in which every path locks several lots (before the audit head), so that no two
    writers deadlock."""
    ids = set(lot_ids)
    if not ids:
        return []
    return list(session.scalars(select(Lot).where(Lot.id.in_(ids)).order_by(Lot.id)
                                .with_for_update(of=Lot)
                                .execution_options(populate_existing=True)))


def set_lot_status(session: Session, lot: Lot, actor: str, status: str, *, because: str,
                   details: Mapping[str, Any] | None = None, today: date | None = None,
                   signature=None) -> None:
    """A decision made by another record (an incoming usage decision): ``released`` from
    quarantine, ``rejected`` from quarantine or released. On a held lot the decision becomes
    the status the lot returns to when the hold lifts. Refuses (409) a move the lot's status
    does not allow, and a release after the expiry date. ``signature`` is the one that took
    the decision on the other record (named in the lot's ERP event)."""
    if status not in DECISION_SOURCES:
        raise ValueError(f"set_lot_status decides released or rejected, not {status!r}")
    held = lot.state == ON_HOLD
    current = (lot.status_before_hold or QUARANTINE) if held else lot.state
    if current not in DECISION_SOURCES[status]:
        raise Conflict(f"lot {lot.number} is {current}; it cannot become {status}",
                       extra={"lot_status": lot.state})
    if status == RELEASED:
        refuse_expired_release(lot, today or site_today())
    changes = {"status_before_hold": status} if held else {}
    revise_record(session, lot, actor, action=status, reason=because, changes=changes,
                  state=None if held else status, details=details,
                  event=AuditAction.Lot.STATUS_DECIDED, signature=signature)


def expire_lots(session: Session, today: date) -> list[str]:
    """The scheduled expiry: every quarantined or released lot whose expiry date is before
    ``today`` becomes ``expired``, as ``system``, each with its own version and audit event.
    Held lots are left on hold (lift_hold returns them as expired). Returns the lot numbers
    in number order. Flushes, never commits."""
    # locked in id order, like every other path that locks several lots (no deadlock)
    due = session.scalars(select(Lot).where(Lot.state.in_(EXPIRING), Lot.expires_on < today)
                          .order_by(Lot.id).with_for_update(of=Lot)).all()
    for lot in sorted(due, key=lambda lot: lot.number):
        revise_record(session, lot, SYSTEM_ACTOR, action="expire", state=EXPIRED,
                      reason=f"expiry date {lot.expires_on.isoformat()} passed",
                      event=AuditAction.Lot.STATUS_EXPIRED)
    return sorted(lot.number for lot in due)
