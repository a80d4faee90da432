"""Writing ERP events: one outbox row per decision, inside the deciding transaction.

Nothing here talks to the outside world (DESIGN.md, the one rule for writes): delivery reads
the committed rows afterwards, woken by the commit itself (qms.erp.wake). The event's JSON is fixed when it is written (docs/erp.md,
version 1) and delivered byte for byte on every channel.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.canonical import utc_timestamp
from audit.trail import connection_of, lock_head
from qms.db import utcnow
from qms.erp import wake
from qms.erp.models import ErpEvent
from qms.esign.models import Signature
from qms.identity.models import User

SCHEMA_VERSION = 1
RELEASED = "released"
# ISA-95 material lot disposition: only a released lot may be used without restriction
UNRESTRICTED, RESTRICTED = "Unrestricted", "Restricted"
# usage decision codes, as SAP QM and most ERPs name them
USAGE_DECISIONS = {"released": "A", "accepted": "A", "rejected": "R"}


def write_event(session: Session, event_type: str, lot: Any, *, actor: str,
                previous_status: str | None = None, batch: str | None = None,
                inspection: str | None = None, usage_decision: str | None = None,
                signature: Signature | None = None, reason: str | None = None) -> ErpEvent:
    """Queue one event about ``lot`` (a materials Lot, its new state already set) for every
    channel. ``seq`` is the next after the last, under the audit head lock, so rows commit in
    ``seq`` order. Flushes, never commits."""
    lock_head(connection_of(session))
    seq = (session.scalar(select(func.max(ErpEvent.seq))) or 0) + 1
    occurred_at = utcnow()
    payload = {
        "event_id": str(uuid.uuid4()), "type": event_type, "schema_version": SCHEMA_VERSION,
        "occurred_at": utc_timestamp(occurred_at), "sequence": seq,
        "lot": lot.number, "batch": batch, "material": lot.material.number,
        "material_name": lot.material.name, "status": lot.state,
        "previous_status": previous_status,
        "disposition": UNRESTRICTED if lot.state == RELEASED else RESTRICTED,
        "usage_decision": usage_decision, "quantity": str(lot.quantity), "unit": lot.unit,
        "expires_on": lot.expires_on.isoformat() if lot.expires_on else None,
        "inspection": inspection, "decided_by": _decided_by(session, actor, signature),
        "reason": reason}
    event = ErpEvent(seq=seq, event_id=payload["event_id"], type=event_type, lot=lot.number,
                     occurred_at=occurred_at, payload=encode(payload))
    # no audit event of its own: the row is append-only evidence written with the decision's
    # audited version; delivery attempts and outcomes are audited
    session.add(event)
    session.flush()
    wake.announce(session)  # delivery starts when (and only if) this transaction commits
    return event


def encode(payload: dict[str, Any]) -> str:
    """The delivered form: keys sorted, no whitespace, UTF-8 characters as themselves."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _decided_by(session: Session, actor: str, signature: Signature | None) -> dict[str, Any]:
    if signature is not None:
        return {"username": signature.signer, "name": signature.name,
                "signature_id": signature.id, "meaning": signature.meaning}
    name = session.scalar(select(User.full_name).where(User.username == actor))
    return {"username": actor, "name": name or actor, "signature_id": None, "meaning": None}


def usage_decision_of(status: str) -> str | None:
    """A for a lot released or accepted, R rejected, none for holds and expiry."""
    return USAGE_DECISIONS.get(status)
