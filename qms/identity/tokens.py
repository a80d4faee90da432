"""API bearer tokens: issued to users (8 h) or to service accounts (qms token create).

The token is shown once; only its sha256 is stored. Flushes, never commits.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import utcnow
from qms.errors import Conflict
from qms.identity.authentication import user_entity
from qms.identity.models import ApiToken, User

TOKEN_PREFIX = "qms_"
# how stale last_used_at may get before a request writes it again: an idle limit counted in
# minutes needs no finer record, and most requests then write nothing
TOUCH_EVERY = timedelta(minutes=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, *, actor: str, user: User, lifetime: timedelta,
                kind: str, name: str = "") -> tuple[str, ApiToken]:
    """Create a token; returns the secret (shown once) and its row."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=token_digest(secret), prefix=secret[:12],
                   name=name, kind=kind, expires_at=utcnow() + lifetime)
    session.add(row)
    session.flush()
    record_event(session, actor=actor, action=AuditAction.Identity.TOKEN_CREATED,
                 data={"token_id": row.id, "prefix": row.prefix, "kind": kind, "name": name,
                       "expires_at": row.expires_at.isoformat()},
                 entity=user_entity(user))
    return secret, row


def resolve_token(session: Session, secret: str, *, idle_limit: timedelta) -> ApiToken | None:
    """The live token row for a presented secret, or None (unknown, expired, revoked, idle
    for ``idle_limit`` or more, or its user deactivated or locked). A user's token dies when
    unused for ``idle_limit``, like a web session; service tokens (machines that may poll
    rarely) live until they expire or are revoked."""
    if not secret.isascii():  # every issued token is ASCII; anything else cannot match
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.kind == "user" and now - last_activity(row) >= idle_limit:
        return None
    if not row.user.active or row.user.locked:
        return None
    return row


def last_activity(token: ApiToken) -> datetime:
    return token.last_used_at or token.created_at


def needs_touch(token: ApiToken) -> bool:
    return utcnow() - last_activity(token) >= TOUCH_EVERY


def touch(session: Session, token_id: int) -> None:
    """Record that the token was used now (the idle clock restarts). Flushes, never commits."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id)
                    .values(last_used_at=utcnow()))


def revoke_token(session: Session, *, actor: str, token: ApiToken, reason: str) -> None:
    if token.revoked_at is not None:
        raise Conflict("token is already revoked")
    token.revoked_at = utcnow()
    record_event(session, actor=actor, action=AuditAction.Identity.TOKEN_REVOKED,
                 data={"token_id": token.id, "prefix": token.prefix},
                 entity=user_entity(token.user), reason=reason)


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.id)))
