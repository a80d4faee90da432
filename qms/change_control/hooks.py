"""The change control workflow's domain rules (before a transition writes anything) and
consequences (after the signed version is stored), registered with the record type.

Approval is the self-loop transition ``approve`` (in_approval -> in_approval). Before it, the
signer must fit an open approval slot (qms.change_control.approvals), else 409 and nothing is
written. After it, the slot is recorded against the signature just applied, and the approval
that fills the last slot moves the change to ``approved`` (revise_record, action
``approvals_complete``) in the same transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.change_control.approvals import approvals_complete, open_slots, slot_for
from qms.errors import Conflict
from qms.esign.models import Signature
from qms.esign.service import signatures_of
from qms.identity.models import User
from qms.records.models import RecordVersion
from qms.records.service import revise_record
from qms.records.workflow import Transition

if TYPE_CHECKING:
    from qms.change_control.models import ChangeControl

APPROVED = "approved"
# fields a change must have before it goes to approval
NEEDED_FOR_APPROVAL = ("description", "justification", "implementation_plan")


def before_change_transition(session: Session, record: ChangeControl, transition: Transition,
                             actor: User, reason: str | None) -> None:
    """Refuse (409) a transition the change is not ready for; writes nothing."""
    check = _READINESS.get(transition.action)
    if check is not None:
        check(record, actor)


def after_change_transition(session: Session, record: ChangeControl, transition: Transition,
                            actor: User, reason: str | None) -> None:
    """After ``approve``: record the slot the signature filled; complete the approvals."""
    if transition.action == "approve":
        record_approval(session, record, actor)


def _ready_for_approval(record: ChangeControl, actor: User) -> None:
    missing = [name for name in NEEDED_FOR_APPROVAL if not (getattr(record, name) or "").strip()]
    if not record.impacted_items:
        missing.append("impacted_items")
    if missing:
        raise Conflict(f"{record.number} cannot go to approval without: {', '.join(missing)}",
                       extra={"missing": missing})


def _open_slot_for(record: ChangeControl, actor: User) -> None:
    if slot_for(record.risk, record.filled_slots(), actor.roles) is None:
        raise Conflict(_no_slot_message(record, actor), extra={
            "open_slots": [s.name for s in open_slots(record.risk, record.filled_slots())]})


def _no_slot_message(record: ChangeControl, actor: User) -> str:
    still_open = open_slots(record.risk, record.filled_slots())
    wanted = ", ".join(f"{slot.name} (role {slot.role})" for slot in still_open)
    return (f"{record.number} ({record.risk} risk) has no open approval for the roles of "
            f"{actor.username}; still required: {wanted or 'none'}")


def _implementation_recorded(record: ChangeControl, actor: User) -> None:
    if not (record.implementation_notes or "").strip():
        raise Conflict(f"record the implementation notes of {record.number} before marking "
                       "it implemented", extra={"missing": ["implementation_notes"]})


def _verified_effective(record: ChangeControl, actor: User) -> None:
    if record.verification_result != "effective":
        raise Conflict(f"{record.number} can be verified only with an effectiveness "
                       f"verification result 'effective' (now: {record.verification_result}); "
                       "a change that was not effective is reopened",
                       extra={"verification_result": record.verification_result})
    # The recorded verification is a decision, not content (it makes nobody an author), so
    # it is attributable only if the person who recorded it is the one who signs it.
    recorder = verification_recorder(record)
    if recorder != actor.username:
        raise Conflict(f"the effectiveness verification of {record.number} was recorded by "
                       f"{recorder}, who signs it; to sign it yourself, record your own "
                       "verification first", extra={"recorded_by": recorder})


def verification_recorder(record: ChangeControl) -> str | None:
    """Who recorded the verification the current version carries."""
    return object_session(record).scalar(
        select(RecordVersion.changed_by)
        .where(RecordVersion.record_type == record.record_type,
               RecordVersion.record_id == record.number,
               RecordVersion.action == "verification_recorded")
        .order_by(RecordVersion.version.desc()).limit(1))


_READINESS: dict[str, Callable[[Any, User], None]] = {
    "submit": _ready_for_approval,
    "approve": _open_slot_for,
    "implement": _implementation_recorded,
    "verify": _verified_effective,
}


def record_approval(session: Session, record: ChangeControl, actor: User) -> None:
    """Record which slot the approval just signed fills, audited; when it is the last one,
    move the change to ``approved`` as a new version. Flushes, never commits."""
    slot = slot_for(record.risk, record.filled_slots(), actor.roles)
    if slot is None:  # before_change_transition refused this case; the data changed since
        raise Conflict(_no_slot_message(record, actor))
    approval = record.add_approval(slot.name, _signature_just_applied(session, record, actor))
    session.flush()
    remaining = [s.name for s in open_slots(record.risk, record.filled_slots())]
    record_event(session, actor=actor.username, action=AuditAction.ChangeControl.APPROVAL_RECORDED,
                 data={"version": record.version, "slot": slot.name,
                       "signature_id": approval.signature_id, "open_slots": remaining},
                 entity=(record.record_type, record.number))
    if approvals_complete(record.risk, record.filled_slots()):
        revise_record(session, record, actor.username, action="approvals_complete",
                      reason=None, state=APPROVED,
                      details={"approvals": [{"slot": a.slot, "username": a.username,
                                              "signature_id": a.signature_id}
                                             for a in record.approvals]})


def _signature_just_applied(session: Session, record: ChangeControl, actor: User) -> Signature:
    """The *approved* signature of the version this transition stored."""
    return next(s for s in signatures_of(session, record.record_type, record.number)
                if s.record_version == record.version and s.meaning == APPROVED
                and s.signer == actor.username)
