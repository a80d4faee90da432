"""The application's one way into the audit trail: every service writes its events here."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from audit import trail

SYSTEM_ACTOR = "system"


def record_event(session: Session, *, actor: str, action: str, data: dict[str, Any],
                 entity: tuple[str, str] | None = None, reason: str | None = None) -> trail.Event:
    """Append one event inside the session's transaction (flushes pending ORM changes first
    so the event follows the change it describes). Never commits."""
    session.flush()
    return trail.append(session, actor=actor, action=action, data=data, entity=entity,
                        reason=reason)
