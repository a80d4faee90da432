"""Every audit action the application writes, in one place, one enum per area
(``AuditAction.Identity``, ``AuditAction.Lot``, ...), as Warehouse's ``EventTag``;
docs/audit-trail-format.md section 9 says who writes each one and what its ``data`` holds.

The texts are part of the public trail format: existing trails hold them and auditors search
for them, so a value never changes. A new action gets a new member here and a row in the
document (tests/test_audit_actions.py checks both). Members are ``str`` (StrEnum), so they
go wherever an action is written or compared; the trail stores the plain text.

A controlled record's own changes are named by its type:
``record_action(record_type, RecordVerb.CREATED)`` is ``"<type>.record.created"``.
"""
from __future__ import annotations

from enum import StrEnum

# the audit library writes and reads these itself, and never imports qms
from audit.checkpoints import CHECKPOINT_ACTION
from audit.succession import ROTATION_ACTION, SITE_CHANGE_ACTION


class AuditAction:
    """The actions by area, e.g. ``AuditAction.Lot.HOLD_PLACED`` (``"lot.hold.placed"``)."""

    class Audit(StrEnum):
        """The trail's own anchoring (audit/): checkpoints, key rotation, site change."""
        CHECKPOINT_SIGNED = CHECKPOINT_ACTION
        KEY_ROTATED = ROTATION_ACTION
        SITE_CHANGED = SITE_CHANGE_ACTION

    class Identity(StrEnum):
        """Accounts, logins, passwords and API tokens (qms.identity)."""
        USER_CREATED = "identity.user.created"
        USER_ROLES_CHANGED = "identity.user.roles_changed"
        USER_DEACTIVATED = "identity.user.deactivated"
        USER_LOCKED = "identity.user.locked"
        USER_UNLOCKED = "identity.user.unlocked"
        PASSWORD_CHANGED = "identity.password.changed"
        PASSWORD_RESET = "identity.password.reset"
        LOGIN_SUCCEEDED = "identity.login.succeeded"
        LOGIN_FAILED = "identity.login.failed"
        LOGIN_FAILED_TOTAL = "identity.login.failed_total"
        LOGIN_REFUSED = "identity.login.refused"
        LOGIN_CLIENT_LIMIT_REACHED = "identity.login.client_limit_reached"
        LOGOUT_RECORDED = "identity.logout.recorded"
        TOKEN_CREATED = "identity.token.created"
        TOKEN_REVOKED = "identity.token.revoked"

    class Esign(StrEnum):
        """Electronic signatures and the users' signing keys (qms.esign)."""
        SIGNATURE_APPLIED = "signature.applied"
        SIGNATURE_REFUSED = "signature.refused"
        KEY_REPLACED = "esign.key.replaced"

    class Lot(StrEnum):
        """A lot's holds and the status other records decide (qms.materials.holds)."""
        HOLD_PLACED = "lot.hold.placed"
        HOLD_LIFTED = "lot.hold.lifted"
        STATUS_DECIDED = "lot.status.decided"
        STATUS_EXPIRED = "lot.status.expired"

    class Batch(StrEnum):
        """The lots a batch consumed (qms.materials.batches)."""
        LOT_CONSUMED = "batch.lot.consumed"
        LOT_CONSUMPTION_REVERSED = "batch.lot.consumption_reversed"

    class Inspection(StrEnum):
        """Inspection results and plans (qms.inspection)."""
        RESULT_RECORDED = "inspection.result.recorded"
        RESULT_CORRECTED = "inspection.result.corrected"
        DEVIATION_RAISED = "inspection.deviation.raised"
        PLAN_SUPERSEDED = "inspection_plan.record.superseded"

    class Deviation(StrEnum):
        """The lots a deviation names (qms.deviations.service)."""
        LOTS_NAMED = "deviation.lots.named"
        LOT_REMOVED = "deviation.lot.removed"

    class Capa(StrEnum):
        """CAPA actions and the overdue reports of the scheduled job (qms.capa)."""
        ACTION_ADDED = "capa.action.added"
        ACTION_COMPLETED = "capa.action.completed"
        ACTION_OVERDUE = "capa.action.overdue"
        EFFECTIVENESS_OVERDUE = "capa.effectiveness.overdue"

    class ChangeControl(StrEnum):
        """Approvals, implementation and verification of a change (qms.change_control)."""
        APPROVAL_RECORDED = "change_control.approval.recorded"
        IMPLEMENTATION_RECORDED = "change_control.implementation.recorded"
        VERIFICATION_RECORDED = "change_control.verification.recorded"

    class Erp(StrEnum):
        """Delivery of the ERP outbox on every channel (qms.erp)."""
        FEED_READ = "erp.feed.read"
        MESSAGE_ACKNOWLEDGED = "erp.message.acknowledged"
        MESSAGE_DELIVERED = "erp.message.delivered"
        MESSAGE_FAILED = "erp.message.failed"
        MESSAGE_PARKED = "erp.message.parked"
        MESSAGE_REQUEUED = "erp.message.requeued"


class RecordVerb(StrEnum):
    """The record core's changes of any controlled record (qms.records.service)."""
    CREATED = "created"
    UPDATED = "updated"
    TRANSITIONED = "transitioned"
    REVISED = "revised"  # a revision the domain names no more precisely


def record_action(record_type: str, verb: RecordVerb) -> str:
    """``<record type>.record.<verb>``, e.g. ``deviation.record.created``."""
    return f"{record_type}.record.{RecordVerb(verb).value}"


AREAS: tuple[type[StrEnum], ...] = (
    AuditAction.Audit, AuditAction.Identity, AuditAction.Esign, AuditAction.Lot,
    AuditAction.Batch, AuditAction.Inspection, AuditAction.Deviation, AuditAction.Capa,
    AuditAction.ChangeControl, AuditAction.Erp)


def fixed_actions() -> frozenset[str]:
    """Every action with a fixed name (the record core's are per record type)."""
    return frozenset(member.value for area in AREAS for member in area)
