"""Per-user Ed25519 signing keys, stored only wrapped under a password-derived key.

The wrapping key is scrypt(password, salt) and the private key is sealed with AES-256-GCM,
so the server cannot sign for a user who did not type the password. A key is only ever sealed
under a password of the user's own: it is created when they set their first own password, a
change of their own password re-wraps it, and an admin reset retires it (its public key stays
for verifying old signatures) without creating a new one under the temporary password
(qms.identity.password_change creates the next).

Keys from before that rule may have been sealed under a temporary password and only later
re-wrapped, so a backup from that time opens them: migration 0011 marks every key it found
active ``replace_before_signing``, and such a key never signs. The user's next signature
or own password change retires it and creates a new key under the password they just typed
(``replace_legacy_key``).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import utcnow
from qms.esign.models import SigningKey

SCRYPT_R, SCRYPT_P = 8, 1
LEGACY_KEY_REASON = "created before keys waited for the user's own password"


class KeyUnwrapError(Exception):
    """The password does not open this key."""


@dataclass(frozen=True)
class WrappedKey:
    ciphertext: bytes
    salt: bytes
    nonce: bytes
    log_n: int


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_for(public_bytes: bytes) -> str:
    """Key id = first 16 hex characters of sha256 of the raw 32-byte public key."""
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def derive_wrapping_key(password: str, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=2 ** log_n, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(password.encode("utf-8"))


def wrap(private_key: Ed25519PrivateKey, password: str, log_n: int) -> WrappedKey:
    salt, nonce = os.urandom(16), os.urandom(12)
    seed = private_key.private_bytes_raw()
    sealed = AESGCM(derive_wrapping_key(password, salt, log_n)).encrypt(nonce, seed, b"qms-signing-key")
    return WrappedKey(sealed, salt, nonce, log_n)


def unwrap(key: SigningKey, password: str) -> Ed25519PrivateKey:
    """Open the user's private key with their password; KeyUnwrapError if it does not."""
    if key.wrapped_private_key is None:
        raise KeyUnwrapError("key is retired")
    wrapping_key = derive_wrapping_key(password, key.salt, key.scrypt_log_n)
    try:
        seed = AESGCM(wrapping_key).decrypt(key.nonce, key.wrapped_private_key, b"qms-signing-key")
    except InvalidTag:
        raise KeyUnwrapError("password does not open the signing key") from None
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True)
class NewKey:
    """A key pair sealed under a password, not yet stored. Sealing (scrypt) is the slow part:
    ``seal_new_key`` can run before the write transaction, ``store_new_key`` inside it."""
    private_key: Ed25519PrivateKey
    sealed: WrappedKey


def seal_new_key(password: str, log_n: int) -> NewKey:
    """Generate a key pair and seal it under ``password`` (scrypt). Writes nothing."""
    private_key = Ed25519PrivateKey.generate()
    return NewKey(private_key, wrap(private_key, password, log_n))


def store_new_key(session: Session, user_id: int, new_key: NewKey) -> SigningKey:
    """Store a sealed key pair as the user's key. Flushes, never commits."""
    public_bytes = raw_public_key(new_key.private_key.public_key())
    sealed = new_key.sealed
    key = SigningKey(key_id=key_id_for(public_bytes), user_id=user_id, public_key=public_bytes,
                     wrapped_private_key=sealed.ciphertext, salt=sealed.salt,
                     nonce=sealed.nonce, scrypt_log_n=sealed.log_n)
    session.add(key)
    session.flush()
    return key


def create_signing_key(session: Session, user_id: int, password: str, log_n: int) -> SigningKey:
    """Generate a key pair for the user, wrapped under ``password``. Flushes, never commits."""
    return store_new_key(session, user_id, seal_new_key(password, log_n))


def replace_legacy_key(session: Session, key: SigningKey, *, username: str,
                       new_key: NewKey) -> SigningKey:
    """Retire ``key`` (flagged ``replace_before_signing``) and store ``new_key``, sealed under
    a password the caller has just verified as the user's own; audited as
    ``esign.key.replaced``. The caller holds the user's row lock, so one key is never
    replaced twice. Flushes, never commits."""
    retire(key, LEGACY_KEY_REASON)
    stored = store_new_key(session, key.user_id, new_key)
    record_event(session, actor=username, action=AuditAction.Esign.KEY_REPLACED,
                 data={"old_key_id": key.key_id, "new_key_id": stored.key_id,
                       "why": LEGACY_KEY_REASON}, entity=("user", username))
    return stored


def active_key(session: Session, user_id: int, *, for_update: bool = False) -> SigningKey | None:
    """The user's current key; ``for_update`` locks and reloads it (password change and admin
    reset must not interleave, or a retired key could be re-sealed)."""
    query = select(SigningKey).where(SigningKey.user_id == user_id,
                                     SigningKey.retired_at.is_(None))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def keys_of(session: Session, user_id: int) -> list[SigningKey]:
    return list(session.scalars(select(SigningKey).where(SigningKey.user_id == user_id)
                                .order_by(SigningKey.created_at)))


def resealed(key: SigningKey, old_password: str, new_password: str) -> WrappedKey:
    """The same private key sealed under a new password (password change): the slow part
    (scrypt twice), writing nothing. KeyUnwrapError when ``old_password`` does not open it."""
    return wrap(unwrap(key, old_password), new_password, key.scrypt_log_n)


def store_seal(key: SigningKey, sealed: WrappedKey) -> None:
    """Keep ``sealed`` (from ``resealed``) as the key's wrapped private half."""
    key.wrapped_private_key, key.salt, key.nonce = sealed.ciphertext, sealed.salt, sealed.nonce


def retire(key: SigningKey, reason: str) -> None:
    """Keep the public key for verification; destroy the wrapped private key."""
    key.retired_at = utcnow()
    key.retired_reason = reason
    key.wrapped_private_key = None
