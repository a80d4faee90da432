"""User administration: create, deactivate, roles, admin password reset, unlock.

Usernames are unique forever: a deactivated user keeps the name. Flushes, never commits.
"""
from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import utcnow
from qms.errors import Conflict, InvalidInput, SegregationOfDuties
from qms.esign import keys
from qms.identity.authentication import (find_user, revoke_all_tokens, set_password,
                                         user_entity)
from qms.identity.models import User, UserRole, is_username
from qms.identity.passwords import HashedPassword
from qms.identity.security import Security
from qms.records.service import required_reason

RESERVED_USERNAMES = {"system", "anonymous"}


def create_user(session: Session, security: Security, *, actor: str, username: str,
                full_name: str, roles: list[str], password: HashedPassword | None,
                service: bool = False, temporary: bool = True) -> User:
    """Create a person with a password, hashed before the transaction (the caller calls
    Security.hash_password first), or a service account without one (token access only).

    A temporary password (the default: an administrator chose it) gives the user no signing
    key: the key is born when they set their own password (qms.identity.password_change), so
    nobody who knew the temporary one can ever open it. ``temporary=False`` means the password
    is the user's own (the first admin through QMS_ADMIN_PASSWORD, the demo users, test
    factories, all at a time nobody else writes): the key is created at once, sealed under
    it. Flushes, never commits."""
    _check_new_user(session, security, username, full_name, roles, password, service)
    user = User(username=username, full_name=full_name.strip(), is_service=service,
                created_by=actor, password_temporary=not service,
                role_rows=[UserRole(role=r) for r in sorted(set(roles))])
    session.add(user)
    session.flush()
    key_id = None
    if not service:
        set_password(session, user, password.hash, temporary=temporary)
        if not temporary:
            key_id = keys.create_signing_key(session, user.id, password.text,
                                             security.key_wrap_log_n).key_id
    record_event(session, actor=actor, action=AuditAction.Identity.USER_CREATED,
                 data={"username": username, "full_name": user.full_name, "roles": user.roles,
                       "service_account": service, "signing_key": key_id,
                       "temporary_password": user.password_temporary},
                 entity=user_entity(user))
    return user


def _check_new_user(session, security, username, full_name, roles, password, service) -> None:
    if not is_username(username) or username in RESERVED_USERNAMES:
        raise InvalidInput("lowercase letters, digits and . _ - (2-63 characters, starting "
                           "with a letter); 'system' and 'anonymous' are reserved",
                           field="username")
    if find_user(session, username) is not None:
        raise Conflict(f"username {username!r} exists or existed; usernames are never reused",
                       field="username")
    if not full_name.strip():
        raise InvalidInput("the printed name is required for signature manifestation",
                           field="full_name")
    _check_roles(security, roles, service=service)
    if not service:
        problems = security.policy.problems(password.text if password else "", username)
        if problems:
            raise InvalidInput("; ".join(problems), field="password")


# What a machine may do with a token: read, export and take the ERP feed. Administration,
# requeues and every GMP write stay with people, who are named in the trail (a service
# account holding `admin` would let an administrator act on their own account as a robot).
SERVICE_PERMISSIONS = frozenset({"record.read", "audit.read", "audit.export", "erp.feed"})


def _check_roles(security: Security, roles: list[str], *, service: bool) -> None:
    if not roles:
        raise InvalidInput("at least one role is required", field="roles")
    for role in roles:
        try:
            security.roles.check_role(role)
        except ValueError as error:
            raise InvalidInput(str(error), field="roles") from None
    beyond = security.roles.permissions_of(roles) - SERVICE_PERMISSIONS if service else ()
    if beyond:
        raise InvalidInput(f"a service account only reads, exports and takes the ERP feed; "
                           f"these roles grant {', '.join(sorted(beyond))}", field="roles")


def refuse_own_account(actor: str, user: User) -> None:
    """Administrators change other people's accounts, never their own: one who could set
    their own roles could give themselves a signing role (DESIGN.md: admins sign nothing),
    and one who resets their own password skips the check of the old one."""
    if actor == user.username:
        raise SegregationOfDuties("administrators do not administer their own account; "
                                  "another administrator must do it")


def set_roles(session: Session, security: Security, *, actor: str, user: User,
              roles: list[str], reason: str) -> None:
    """Replace the user's roles; audited with before and after. Flushes, never commits."""
    refuse_own_account(actor, user)
    reason = required_reason(reason)
    _check_roles(security, roles, service=user.is_service)
    before = user.roles
    user.role_rows = [UserRole(role=r) for r in sorted(set(roles))]
    record_event(session, actor=actor, action=AuditAction.Identity.USER_ROLES_CHANGED,
                 data={"before": {"roles": before}, "after": {"roles": user.roles}},
                 entity=user_entity(user), reason=reason)


def deactivate_user(session: Session, *, actor: str, user: User, reason: str) -> None:
    """The account can no longer log in, use tokens or sign; the row and name stay."""
    refuse_own_account(actor, user)
    reason = required_reason(reason)
    if not user.active:
        raise Conflict(f"user {user.username} is already deactivated")
    user.active = False
    user.deactivated_at = utcnow()
    revoked = revoke_all_tokens(session, user)
    record_event(session, actor=actor, action=AuditAction.Identity.USER_DEACTIVATED,
                 data={"tokens_revoked": revoked}, entity=user_entity(user), reason=reason)


def reset_password(session: Session, security: Security, *, actor: str, user: User,
                   temporary_password: HashedPassword, reason: str) -> str | None:
    """Admin reset: temporary password (hashed before the transaction), unlock, tokens
    revoked, signing key retired (its public key is kept for verifying old signatures). No
    new key is made here: the next one is born when the user sets their own password, never
    under one the administrator knows. Returns the retired key's id. Flushes, never
    commits."""
    refuse_own_account(actor, user)
    reason = required_reason(reason)
    user = find_user(session, user.username, for_update=True)  # queue behind a password change
    if user.is_service or not user.active:
        raise Conflict(f"{user.username} is a service account or deactivated; it has no "
                       "password to reset")
    problems = security.policy.problems(temporary_password.text, user.username)
    if problems:
        raise InvalidInput("; ".join(problems), field="password")
    set_password(session, user, temporary_password.hash, temporary=True)
    user.failed_attempts, user.locked_at = 0, None
    old = keys.active_key(session, user.id, for_update=True)
    if old is not None:
        keys.retire(old, "password reset by administrator")
    # whoever knew the old password may hold tokens: they die with it
    revoked = revoke_all_tokens(session, user)
    record_event(session, actor=actor, action=AuditAction.Identity.PASSWORD_RESET,
                 data={"retired_key": old.key_id if old else None, "tokens_revoked": revoked},
                 entity=user_entity(user), reason=reason)
    return old.key_id if old else None


def unlock_user(session: Session, *, actor: str, user: User, reason: str) -> None:
    """Clear the lock and the failure count; audited with the reason. Flushes, never commits."""
    reason = required_reason(reason)
    if not user.locked:
        raise Conflict(f"user {user.username} is not locked")
    user.failed_attempts, user.locked_at = 0, None
    record_event(session, actor=actor, action=AuditAction.Identity.USER_UNLOCKED, data={},
                 entity=user_entity(user), reason=reason)


def generate_temporary_password(security: Security, username: str) -> HashedPassword:
    """A random temporary password (120 bits) that meets the password policy, hashed, for
    the users API: the administrator never picks one they might reuse, and sees it only
    once. Slow (argon2): call it before the write transaction."""
    while True:
        password = secrets.token_urlsafe(15)
        if not security.policy.problems(password, username):
            return security.hash_password(password)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))
