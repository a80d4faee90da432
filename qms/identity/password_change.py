"""A user's change of their own password, its slow work done before any lock.

A change costs argon2 on the current password, on each remembered one (the history) and on
the new one, and scrypt on the signing key: about a second at production cost. Under a
write lock that would stall every other writer on SQLite, and the user's row on PostgreSQL.
So ``prepare_password_change`` does all of it first, reading through a short reader beside
the caller's session and writing nothing; ``check_credentials`` (given its verdict) then
records the check of the current password under the user's row lock, on counters read
afresh (``prepare_and_check`` does both); and ``change_password`` writes the outcome, only if the account is still as the
preparation saw it. A password changed or reset meanwhile, or a signing key replaced
meanwhile, refuses the change instead of overwriting what the other request did.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import reading_beside
from qms.errors import Conflict, InvalidInput
from qms.esign import keys
from qms.identity.authentication import (CredentialCheck, PasswordVerdict, check_credentials,
                                         find_user, revoke_all_tokens, set_password,
                                         user_entity, verify_password)
from qms.identity.models import PasswordHistory, User
from qms.identity.security import Security

CHANGED_MEANWHILE = ("the account's password or signing key changed while the new password "
                     "was being prepared; sign in again and retry")
KEY_DOES_NOT_OPEN = ("the signing key does not open with this password; ask an administrator "
                     "to reset the password")

# what identifies the active signing key a preparation worked on: its id, its sealed private
# half and its replace_before_signing flag (None: the user had no active key)
KeySeen = tuple[str, bytes | None, bool] | None


@dataclass(frozen=True)
class PreparedKey:
    """What the change does to the signing key, sealed already: the same key re-sealed
    under the new password (a change between the user's own passwords), or a new key (the
    first own password; a key from before keys waited for it, or sealed under a temporary
    one, is retired for it)."""
    seen: KeySeen
    resealed: keys.WrappedKey | None = None
    new_key: keys.NewKey | None = None
    # the active key did not open with the current password: nothing to re-seal
    does_not_open: bool = False


@dataclass(frozen=True)
class PreparedChange:
    """A password change's slow work (``prepare_password_change``). Only ``verdict`` when the
    current password did not match: nothing else is worth hashing then."""
    verdict: PasswordVerdict
    problems: tuple[str, ...] = ()  # what is wrong with the new password
    new_hash: str | None = None
    key: PreparedKey | None = None


def prepare_password_change(session: Session, security: Security, username: str,
                            old_password: str, new_password: str) -> PreparedChange:
    """Do a password change's slow work with no lock held: check the current password
    (argon2), and only when it matches compare the new one with the policy and the history
    (argon2 each), hash it and seal the signing key under it (scrypt). Admits nothing: run
    it inside the rate limit's admission of the check (``prepare_and_check``). Reads
    through a reader beside ``session``; writes nothing."""
    verdict = verify_password(session, security, username, old_password)
    if not verdict.matches:
        return PreparedChange(verdict)
    with reading_beside(session) as reader:
        user = find_user(reader, username)
        problems = _problems(reader, security, user, new_password)
        if problems:
            return PreparedChange(verdict, problems)
        key = _prepare_key(security, keys.active_key(reader, user.id),
                           user.password_temporary, old_password, new_password)
    return PreparedChange(verdict, (), security.hasher.hash(new_password), key)


def prepare_and_check(session: Session, security: Security, username: str,
                      old_password: str, new_password: str
                      ) -> tuple[PreparedChange, CredentialCheck]:
    """``prepare_password_change``, then ``check_credentials`` of the current password with
    its verdict: the slow work with no lock held, then the check recorded under the user's
    row lock, as a login's is. The rate limit admits the check before anything is hashed
    (TooManyAttempts otherwise) and counts its failure when it ends. A check whose current
    password matched a hash changed meanwhile fails with Conflict (409), not counted.
    Flushes, never commits; the caller commits a failed check before it refuses."""
    with security.throttle.attempt(username) as attempt:
        prepared = prepare_password_change(session, security, username, old_password,
                                           new_password)
        check = check_credentials(session, security, username, old_password,
                                  purpose="password_change", verdict=prepared.verdict,
                                  attempt=attempt)
    if isinstance(check.error, Conflict):
        check = CredentialCheck(check.user, Conflict(CHANGED_MEANWHILE))
    return prepared, check


def change_password(session: Session, user: User, prepared: PreparedChange) -> None:
    """Set the new password of ``prepared`` for ``user``, whose current password
    ``check_credentials`` has just accepted (the row is locked): remembered in the history,
    the signing key given to this password alone, every API token revoked, audited.
    InvalidInput (422) for the new password's problems; Conflict (409) when the password or
    the signing key changed since the preparation, so that the other change stands. Flushes,
    never commits."""
    if user.password_hash != prepared.verdict.hash_seen or not prepared.verdict.matches:
        raise Conflict(CHANGED_MEANWHILE)  # checked against a hash that no longer counts
    if prepared.problems:
        raise InvalidInput("; ".join(prepared.problems), field="new_password")
    key_change = _store_key(session, user, prepared.key)
    set_password(session, user, prepared.new_hash, temporary=False)
    revoked = revoke_all_tokens(session, user)
    record_event(session, actor=user.username, action=AuditAction.Identity.PASSWORD_CHANGED,
                 data={**key_change, "tokens_revoked": revoked}, entity=user_entity(user))


def _problems(reader: Session, security: Security, user: User,
              new_password: str) -> tuple[str, ...]:
    problems = security.policy.problems(new_password, user.username)
    if not problems and _recently_used(reader, security, user, new_password):
        problems = [f"must differ from the last {security.policy.history} passwords"]
    return tuple(problems)


def _recently_used(reader: Session, security: Security, user: User, password: str) -> bool:
    recent = reader.scalars(select(PasswordHistory.password_hash)
                            .where(PasswordHistory.user_id == user.id)
                            .order_by(PasswordHistory.id.desc())
                            .limit(security.policy.history)).all()
    return any(security.hasher.verify(password, old) for old in recent)


def _seen(key: keys.SigningKey | None) -> KeySeen:
    return None if key is None else (key.key_id, key.wrapped_private_key,
                                     key.replace_before_signing)


def _prepare_key(security: Security, key: keys.SigningKey | None, temporary: bool,
                 old_password: str, new_password: str) -> PreparedKey:
    """A key sealed under the user's own password is re-sealed; any other (none yet, one
    sealed under a temporary password, one flagged ``replace_before_signing`` by migration
    0011) makes way for a new key, so no key ever opens with a password someone else knew."""
    if key is not None and not key.replace_before_signing and not temporary:
        try:
            return PreparedKey(_seen(key), resealed=keys.resealed(key, old_password,
                                                                 new_password))
        except keys.KeyUnwrapError:
            return PreparedKey(_seen(key), does_not_open=True)
    return PreparedKey(_seen(key), new_key=keys.seal_new_key(new_password,
                                                             security.key_wrap_log_n))


def _store_key(session: Session, user: User, prepared: PreparedKey) -> dict[str, str | None]:
    """Store the prepared key change, if the active key is still the one it was prepared
    for (locked and read again); returns the audit event's key fields."""
    key = keys.active_key(session, user.id, for_update=True)
    if _seen(key) != prepared.seen:
        raise Conflict(CHANGED_MEANWHILE)
    if prepared.does_not_open:
        raise Conflict(KEY_DOES_NOT_OPEN)
    if prepared.resealed is not None:
        keys.store_seal(key, prepared.resealed)
        return {"signing_key_rewrapped": key.key_id}
    if key is not None and key.replace_before_signing:
        created = keys.replace_legacy_key(session, key, username=user.username,
                                          new_key=prepared.new_key)
        return {"signing_key_created": created.key_id, "signing_key_retired": key.key_id}
    if key is not None:
        keys.retire(key, "sealed under a temporary password")
    created = keys.store_new_key(session, user.id, prepared.new_key)
    return {"signing_key_created": created.key_id,
            "signing_key_retired": key.key_id if key else None}
