"""Credential checks (login, token issue, e-signature) and password changes.

A failed check must be remembered even though the request fails: ``check_credentials``
returns an outcome instead of raising, the caller commits (failure count, lockout, audit
event) and only then refuses. Services here flush, never commit.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.auditing import record_event
from qms.db import utcnow
from qms.errors import (AccountLocked, AuthenticationFailed, Conflict, DomainError,
                        InvalidInput, NotPermitted, PasswordChangeRequired)
from qms.esign import keys
from qms.identity.models import ApiToken, PasswordHistory, User
from qms.identity.security import Security

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class CredentialCheck:
    user: User | None
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_failure(self) -> User:
        if self.error is not None:
            raise self.error
        return self.user


def find_user(session: Session, username: str, *, for_update: bool = False) -> User | None:
    """The user by name. ``for_update`` locks the row until the transaction ends (PostgreSQL;
    SQLite writers hold the database lock) and reloads it, so that concurrent failure counts,
    resets and password changes of one user queue instead of overwriting each other."""
    query = select(User).where(User.username == username)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def check_credentials(session: Session, security: Security, username: str, password: str,
                      *, purpose: str) -> CredentialCheck:
    """Verify username + password for ``purpose`` ("login", "token", "signature",
    "password_change"). Failures are counted and audited; at the threshold the account is
    locked with an urgent audit event. Flushes, never commits."""
    user = find_user(session, username, for_update=True)
    if user is None or user.is_service or user.password_hash is None:
        security.hasher.verify(password, security.dummy_hash())  # same cost as a real check
        record_event(session, actor=ANONYMOUS, action="identity.login.failed",
                     data={"username": username[:150], "purpose": purpose, "why": "unknown user"})
        return CredentialCheck(None, AuthenticationFailed("invalid username or password"))
    # verified even when the account cannot log in, so the answer's timing tells nothing
    password_ok = security.hasher.verify(password, user.password_hash)
    refusal = _account_refusal(user)
    if refusal:
        record_event(session, actor=user.username, action="identity.login.refused",
                     data={"purpose": purpose, "why": refusal[0]}, entity=user_entity(user))
        return CredentialCheck(user, refusal[1])
    if not password_ok:
        return CredentialCheck(user, _count_failure(session, security, user, purpose))
    user.failed_attempts = 0
    return CredentialCheck(user)


def check_administrator(session: Session, security: Security, username: str, password: str,
                        *, permission: str) -> CredentialCheck:
    """Authenticate the operator of an administrative command (``qms user ...``, ``qms token
    ...``, ``qms erp redeliver``), who becomes the audit actor of what the command does.

    The password goes through ``check_credentials`` like a login, so failures count toward
    lockout and are audited, and a locked or deactivated account is refused. An operator
    whose password is temporary or expired, or who lacks ``permission``, is refused too,
    with an ``identity.login.refused`` event. Flushes, never commits: the caller commits the
    outcome, then refuses."""
    check = check_credentials(session, security, username, password, purpose="administration")
    if not check.ok:
        return check
    user = check.user
    if password_change_due(security, user):
        why, error = "password change required", PasswordChangeRequired(
            "the password is temporary or expired; change it first (web or "
            "POST /api/v1/auth/password)")
    elif not security.roles.allows(user.roles, permission):
        why, error = f"lacks {permission}", NotPermitted(f"permission {permission!r} is required")
    else:
        return check
    record_event(session, actor=user.username, action="identity.login.refused",
                 data={"purpose": "administration", "why": why}, entity=user_entity(user))
    return CredentialCheck(user, error)


def _account_refusal(user: User) -> tuple[str, DomainError] | None:
    """(why, for the audit trail; the error the caller sees). A deactivated account answers
    like a wrong password so that the API does not reveal which accounts exist; a locked one
    answers 423, as the API contract says."""
    if not user.active:
        return "account is deactivated", AuthenticationFailed("invalid username or password")
    if user.locked:
        return "account is locked", AccountLocked(
            "account is locked after repeated failures; ask an administrator")
    return None


def _count_failure(session: Session, security: Security, user: User, purpose: str) -> DomainError:
    user.failed_attempts += 1
    record_event(session, actor=user.username, action="identity.login.failed",
                 data={"purpose": purpose, "failed_attempts": user.failed_attempts},
                 entity=user_entity(user))
    if user.failed_attempts < security.policy.lockout_threshold:
        return AuthenticationFailed("invalid username or password")
    user.locked_at = utcnow()
    record_event(session, actor="system", action="identity.user.locked",
                 data={"urgent": True, "failed_attempts": user.failed_attempts,
                       "purpose": purpose, "username": user.username},
                 entity=user_entity(user))
    return AccountLocked("account locked after repeated failures; ask an administrator")


def password_change_due(security: Security, user: User) -> bool:
    return user.password_temporary or security.policy.expired(user.password_changed_at, utcnow())


def change_password(session: Session, security: Security, user: User,
                    old_password: str, new_password: str) -> None:
    """Set a new password the user chose (old one already verified by the caller), remember
    it in the history, and give the signing key to this password alone: the key sealed under
    the user's previous own password is re-sealed; when the old password was temporary (an
    administrator knew it) a new key is created and any key sealed under the temporary one
    is retired, so no key ever opens with a password someone else knew. Flushes, never
    commits."""
    problems = security.policy.problems(new_password, user.username)
    if problems:
        raise InvalidInput("; ".join(problems), field="new_password")
    if _recently_used(session, security, user, new_password):
        raise InvalidInput(f"must differ from the last {security.policy.history} passwords",
                           field="new_password")
    key_change = _key_for_new_password(session, security, user, old_password, new_password)
    set_password(session, security, user, new_password, temporary=False)
    revoked = revoke_all_tokens(session, user)
    record_event(session, actor=user.username, action="identity.password.changed",
                 data={**key_change, "tokens_revoked": revoked}, entity=user_entity(user))


def _key_for_new_password(session: Session, security: Security, user: User,
                          old_password: str, new_password: str) -> dict[str, str | None]:
    """Re-seal the user's key under ``new_password``, or retire and replace it when it was
    sealed under a temporary password (rows from before keys waited for the user's own
    password). Returns the audit event's key fields."""
    key = keys.active_key(session, user.id, for_update=True)
    if key is not None and not user.password_temporary:
        try:
            keys.rewrap(key, old_password, new_password)
        except keys.KeyUnwrapError:
            raise Conflict("the signing key does not open with this password; ask an "
                           "administrator to reset the password") from None
        return {"signing_key_rewrapped": key.key_id}
    if key is not None:
        keys.retire(key, "sealed under a temporary password")
    created = keys.create_signing_key(session, user.id, new_password, security.key_wrap_log_n)
    return {"signing_key_created": created.key_id,
            "signing_key_retired": key.key_id if key else None}


def set_password(session: Session, security: Security, user: User, password: str,
                 *, temporary: bool) -> None:
    user.password_hash = security.hasher.hash(password)
    user.password_temporary = temporary
    user.password_changed_at = utcnow()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))


def _recently_used(session: Session, security: Security, user: User, password: str) -> bool:
    recent = session.scalars(select(PasswordHistory.password_hash)
                             .where(PasswordHistory.user_id == user.id)
                             .order_by(PasswordHistory.id.desc())
                             .limit(security.policy.history))
    return any(security.hasher.verify(password, old) for old in recent)


def user_entity(user: User) -> tuple[str, str]:
    return ("user", user.username)


def record_login(session: Session, user: User, *, channel: str) -> None:
    """Audit a successful login (web session); token issue audits identity.token.created."""
    record_event(session, actor=user.username, action="identity.login.succeeded",
                 data={"channel": channel}, entity=user_entity(user))


def record_logout(session: Session, user: User, *, why: str) -> None:
    """End every web session of the user on the server side ("logout" or "idle timeout"):
    the session generation in their ids no longer matches. Audited; flushes, never commits."""
    user.session_generation += 1
    record_event(session, actor=user.username, action="identity.logout.recorded",
                 data={"why": why}, entity=user_entity(user))


def revoke_all_tokens(session: Session, user: User) -> int:
    """Revoke every live API token of the user (password change or reset, deactivation);
    returns how many. Flushes, never commits."""
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                    ApiToken.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
    return len(tokens)
