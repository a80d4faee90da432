"""Extension points other modules register with at import, so that materials never import
them: the inspection module opens an incoming inspection when a lot is received, and refuses
a manual disposition while that inspection is open; the release module checks the release
gates before a batch transition, makes the batch's lot follow the decision after it, and
names the people whose work the release judges (the batch's ``not_owner`` rule).

A callback raises a DomainError to refuse; nothing has been written by then on the
disposition path, and on the receipt path the caller's transaction rolls back.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from qms.erp.outbox import usage_decision_of, write_event
from qms.errors import Conflict
from qms.dates import today
from qms.identity.models import User
from qms.records.workflow import Transition

if TYPE_CHECKING:
    from qms.materials.models import Batch, Lot

# called after a lot is received (created in quarantine, numbered, audited)
on_lot_received: list[Callable[[Session, "Lot", User], None]] = []
# called before a lot's disposition transition (release, reject) writes anything
lot_disposition_checks: list[Callable[[Session, "Lot", Transition, User], None]] = []
# called with (session, batch, transition, actor, reason) before a batch transition writes
# anything, and after its new version is stored
batch_transition_checks: list[Callable[..., None]] = []
batch_transition_consequences: list[Callable[..., None]] = []
# usernames a batch names as owners for its "not_owner" segregation rule
batch_owners: list[Callable[["Batch"], set[str]]] = []


def before_lot_transition(session: Session, lot: "Lot", transition: Transition, actor: User,
                          reason: str | None) -> None:
    """The lot workflow's before_transition: a produced lot is released only by its batch's
    release decision (which checks the release gates), no release after the expiry date
    (the expiry job may not have run yet), then every registered disposition check.
    Rejecting a produced lot by hand stays open: that is the safe direction."""
    if transition.target == "released":
        if lot.origin == "produced":
            raise Conflict(f"lot {lot.number} is the output of batch {lot.number}: the "
                           "batch's release decision releases it, once its release gates "
                           f"pass (GET /api/v1/batches/{lot.number}/release-check)",
                           extra={"batch": lot.number})
        refuse_expired_release(lot, today())
    for check in list(lot_disposition_checks):
        check(session, lot, transition, actor)


def before_batch_transition(session: Session, batch: "Batch", transition: Transition,
                            actor: User, reason: str | None) -> None:
    """The batch workflow's before_transition: every registered check, in order."""
    for check in list(batch_transition_checks):
        check(session, batch, transition, actor, reason)


def after_batch_transition(session: Session, batch: "Batch", transition: Transition,
                           actor: User, reason: str | None) -> None:
    """The batch workflow's after_transition: every registered consequence, in order."""
    for consequence in list(batch_transition_consequences):
        consequence(session, batch, transition, actor, reason)


def owners_of_batch(batch: "Batch") -> set[str]:
    """The batch's owners (``not_owner``): the union of every registered source."""
    return {username for owners in list(batch_owners) for username in owners(batch)}


def lot_status_changed(session: Session, lot: "Lot", previous: str, actor: str,
                       reason: str | None, signature) -> None:
    """The lot workflow's state_changed: every status change, by hand or as the consequence
    of a decision elsewhere, is an ERP event in the same transaction. A hold ending is no
    usage decision, even when the lot goes back to released or rejected."""
    decision = None if previous == "on_hold" else usage_decision_of(lot.state)
    write_event(session, "lot.status_changed", lot, actor=actor, previous_status=previous,
                usage_decision=decision, signature=signature, reason=reason)


def refuse_expired_release(lot: "Lot", day: date) -> None:
    """409 when the lot is past its expiry date on ``day``: an expired lot is not released,
    by hand or by a usage decision, even before the expiry job has run."""
    if lot.is_expired_on(day):
        raise Conflict(f"lot {lot.number} expired on {lot.expires_on.isoformat()}; it cannot "
                       "be released", extra={"lot_status": lot.state})


def lot_received(session: Session, lot: "Lot", actor: User) -> None:
    """Run every on_lot_received callback, in registration order."""
    for callback in list(on_lot_received):
        callback(session, lot, actor)
