"""Credential checks (login, token issue, password change, e-signature).

A failed check must be remembered even though the request fails: ``check_credentials``
returns an outcome instead of raising, the caller commits (failure count, lockout, audit
event) and only then refuses. Services here flush, never commit.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.canonical import utc_timestamp
from qms.audit_actions import AuditAction
from qms.auditing import SYSTEM_ACTOR, record_event
from qms.db import reading_beside, utcnow
from qms.errors import (AccountLocked, AuthenticationFailed, Conflict, DomainError,
                        NotPermitted, PasswordChangeRequired, keeping_writes)
from qms.identity import unknown_users
from qms.identity.models import ApiToken, PasswordHistory, User
from qms.identity.passwords import UNTIL_UNLOCKED
from qms.identity.security import Security
from qms.identity.throttle import Attempt

PASSWORD_CHANGED_MEANWHILE = ("the account's password changed while this request was being "
                              "checked; sign in again and retry")


@dataclass(frozen=True)
class CredentialCheck:
    user: User | None
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_failure(self) -> User:
        """The user whose credentials held; else raise the failure, keeping what the check
        wrote (the failure count, any lockout, their audit events: qms.errors.keeping_writes),
        for the endpoint to commit before it answers."""
        if self.error is not None:
            raise keeping_writes(self.error)
        return self.user


def find_user(session: Session, username: str, *, for_update: bool = False) -> User | None:
    """The user by name. ``for_update`` locks the row until the transaction ends (PostgreSQL;
    SQLite writers hold the database lock) and reloads it, so that concurrent failure counts,
    resets and password changes of one user queue instead of overwriting each other."""
    query = select(User).where(User.username == username)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


@dataclass(frozen=True)
class PasswordVerdict:
    """What the slow hash said, before any lock: ``hash_seen`` is the stored hash it was
    checked against (None: no account with a password by that name)."""
    hash_seen: str | None
    matches: bool


def verify_password(session: Session, security: Security, username: str,
                    password: str) -> PasswordVerdict:
    """Run argon2 with no lock held: the hash is read through a short reader beside
    ``session``, so a guess never holds SQLite's write lock or PostgreSQL's row lock on the
    user while it hashes (about 0.2 s at production cost). Unknown names are checked against
    a dummy hash, so the answer takes as long as for a real user. Writes nothing."""
    with reading_beside(session) as reader:
        stored = reader.scalar(select(User.password_hash).where(
            User.username == username, User.is_service.is_(False)))
    if stored is None:
        security.hasher.verify(password, security.dummy_hash())
        return PasswordVerdict(None, False)
    return PasswordVerdict(stored, security.hasher.verify(password, stored))


def check_credentials(session: Session, security: Security, username: str, password: str,
                      *, purpose: str, verdict: PasswordVerdict | None = None,
                      attempt: Attempt | None = None) -> CredentialCheck:
    """Verify username + password for ``purpose`` ("login", "token", "signature",
    "password_change"). Flushes, never commits.

    - The rate limits admit the check first (qms.identity.throttle): a client address or
      username with no failures left is refused (TooManyAttempts, 429), with nothing hashed
      or written; a failure is counted there when the check ends, a success is not.
    - The password is hashed before the user's row is locked (always, even for an unknown,
      locked or deactivated account, so the answer's timing tells nothing); the lock is
      taken only to record the outcome, on counters read afresh, so parallel failures all
      count. ``verdict`` is verify_password's answer for this very username and password
      when the caller hashed ahead, before its transaction began.
    - Failures are counted and audited; at the threshold the account is locked with an
      urgent audit event; a lockout past its configured time ends here.
    """
    if attempt is not None:
        return _check_admitted(session, security, username, password, purpose, verdict, attempt)
    with security.throttle.attempt(username) as attempt:  # before hashing: a refusal costs nothing
        return _check_admitted(session, security, username, password, purpose, verdict, attempt)


def _check_admitted(session: Session, security: Security, username: str, password: str,
                    purpose: str, verdict: PasswordVerdict | None,
                    attempt: Attempt) -> CredentialCheck:
    verdict = verdict or verify_password(session, security, username, password)
    user = find_user(session, username, for_update=True)
    if user is None or user.is_service or user.password_hash is None:
        attempt.fail()
        unknown_users.count_failure(session, client=attempt.client, username=username,
                                    purpose=purpose,
                                    interval=security.throttle.unknown_user_interval)
        return CredentialCheck(None, AuthenticationFailed("invalid username or password"))
    _end_lockout_if_over(session, security, user)
    refusal = _account_refusal(security, user)
    if refusal:
        attempt.fail()
        record_event(session, actor=user.username, action=AuditAction.Identity.LOGIN_REFUSED,
                     data={"purpose": purpose, "why": refusal[0]}, entity=user_entity(user))
        return CredentialCheck(user, refusal[1])
    if verdict.matches and user.password_hash != verdict.hash_seen:
        return CredentialCheck(user, Conflict(PASSWORD_CHANGED_MEANWHILE))
    if not _password_matches(security, user, password, verdict):
        attempt.fail()
        return CredentialCheck(user, _count_failure(session, security, user, purpose,
                                                    attempt.client))
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
    record_event(session, actor=user.username, action=AuditAction.Identity.LOGIN_REFUSED,
                 data={"purpose": "administration", "why": why}, entity=user_entity(user))
    return CredentialCheck(user, error)


def _password_matches(security: Security, user: User, password: str,
                      verdict: PasswordVerdict) -> bool:
    if user.password_hash == verdict.hash_seen:
        return verdict.matches
    # a wrong password, and the password changed or reset between the check and the lock
    # (rare): it may be the new one, so check that, under the lock
    return security.hasher.verify(password, user.password_hash)


def _end_lockout_if_over(session: Session, security: Security, user: User) -> None:
    """A lockout ends by itself after ``[security] lockout_minutes`` (never when 0)."""
    if not user.locked or not security.policy.lockout_over(user.locked_at, utcnow()):
        return
    locked_at = user.locked_at
    user.failed_attempts, user.locked_at = 0, None
    record_event(session, actor=SYSTEM_ACTOR, action=AuditAction.Identity.USER_UNLOCKED,
                 data={"why": "lockout expired", "locked_at": utc_timestamp(locked_at),
                       "lockout_minutes": security.policy.lockout_minutes},
                 entity=user_entity(user))


def _account_refusal(security: Security, user: User) -> tuple[str, DomainError] | None:
    """(why, for the audit trail; the error the caller sees). A deactivated account answers
    like a wrong password so that the API does not reveal which accounts exist; a locked one
    answers 423, as the API contract says."""
    if not user.active:
        return "account is deactivated", AuthenticationFailed("invalid username or password")
    if user.locked:
        return "account is locked", locked_error(security)
    return None


def locked_error(security: Security) -> AccountLocked:
    if security.policy.lockout_minutes == UNTIL_UNLOCKED:
        return AccountLocked("account is locked after repeated failures; ask an administrator")
    return AccountLocked("account is locked after repeated failures; try again in "
                         f"{security.policy.lockout_minutes} minutes or ask an administrator")


def _count_failure(session: Session, security: Security, user: User, purpose: str,
                   client: str) -> DomainError:
    """Count a wrong password toward the lockout, but at most ``lockout_threshold - 1`` from
    one client address: one address cannot lock an account by itself, whatever the rate
    limit's storage. The failure that reaches that share is reported urgently (Part 11
    §11.300(d)); later ones from that address are audited, not counted."""
    by_client = dict(user.failures_by_client or {}) if user.failed_attempts else {}
    share = security.policy.lockout_threshold - 1
    counted = by_client.get(client, 0) < share
    if counted:
        by_client[client] = by_client.get(client, 0) + 1
        user.failed_attempts, user.failures_by_client = user.failed_attempts + 1, by_client
    record_event(session, actor=user.username, action=AuditAction.Identity.LOGIN_FAILED,
                 data={"purpose": purpose, "failed_attempts": user.failed_attempts,
                       "client": client, "counted": counted}, entity=user_entity(user))
    if counted and by_client[client] == share:
        record_event(session, actor=SYSTEM_ACTOR,
                     action=AuditAction.Identity.LOGIN_CLIENT_LIMIT_REACHED,
                     data={"urgent": True, "purpose": purpose, "username": user.username,
                           "client": client, "failures_from_client": share},
                     entity=user_entity(user))
    if user.failed_attempts < security.policy.lockout_threshold:
        return AuthenticationFailed("invalid username or password")
    user.locked_at = utcnow()
    record_event(session, actor=SYSTEM_ACTOR, action=AuditAction.Identity.USER_LOCKED,
                 data={"urgent": True, "failed_attempts": user.failed_attempts,
                       "purpose": purpose, "username": user.username,
                       "lockout_minutes": security.policy.lockout_minutes},
                 entity=user_entity(user))
    return locked_error(security)


def password_change_due(security: Security, user: User) -> bool:
    return user.password_temporary or security.policy.expired(user.password_changed_at, utcnow())


def set_password(session: Session, user: User, password_hash: str, *, temporary: bool) -> None:
    """Store a password hashed before the transaction (Security.hash_password) and remember
    it in the history. Flushes, never commits."""
    user.password_hash = password_hash
    user.password_temporary = temporary
    user.password_changed_at = utcnow()
    session.add(PasswordHistory(user_id=user.id, password_hash=password_hash))


def user_entity(user: User) -> tuple[str, str]:
    return ("user", user.username)


def record_login(session: Session, user: User, *, channel: str) -> None:
    """Audit a successful login (web session); token issue audits identity.token.created."""
    record_event(session, actor=user.username, action=AuditAction.Identity.LOGIN_SUCCEEDED,
                 data={"channel": channel}, entity=user_entity(user))


def record_logout(session: Session, user: User, *, why: str) -> None:
    """End every web session of the user on the server side ("logout" or "idle timeout"):
    the session generation in their ids no longer matches. Audited; flushes, never commits."""
    user.session_generation += 1
    record_event(session, actor=user.username, action=AuditAction.Identity.LOGOUT_RECORDED,
                 data={"why": why}, entity=user_entity(user))


def revoke_all_tokens(session: Session, user: User) -> int:
    """Revoke every live API token of the user (password change or reset, deactivation);
    returns how many. Flushes, never commits."""
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                    ApiToken.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
    return len(tokens)
