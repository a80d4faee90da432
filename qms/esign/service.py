"""Applying, verifying and showing electronic signatures.

Signing needs the username and password every time, checked against the account at that
moment; the user's private key is unwrapped with that password, so the server cannot sign for
anyone who did not type it. The signed bytes are the canonical JSON of
``{"at", "content_hash", "meaning", "name", "record": {"id", "type", "version"}, "signer"}``
(DESIGN.md "Electronic signatures").

Refusals come in two kinds. Invalid requests (wrong meaning, no permission) raise before
anything is written. Refused attempts (wrong password, ineligible account, segregation of
duties) are audited, and a wrong password counts toward lockout; those errors carry
``commit_before_raise`` (qms.errors.keeping_writes): the endpoint commits the refusal, then
answers with the error.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.canonical import canonical_bytes, utc_timestamp
from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import utcnow
from qms.errors import (AccountLocked, Conflict, DomainError, InvalidInput, NotPermitted,
                        SegregationOfDuties, SignatureRefused, TooManyAttempts,
                        keeping_writes)
from qms.esign import keys
from qms.esign.models import Signature
from qms.identity.authentication import (PasswordVerdict, check_credentials,
                                        password_change_due, verify_password)
from qms.identity.models import User
from qms.identity.roles import ADMIN_ROLE
from qms.identity.security import Security
from qms.identity.throttle import Attempt
from qms.records.models import RecordVersion

SegregationCheck = Callable[[str], None]


def sign_record(session: Session, security: Security, *, user: User,
                credentials: Mapping[str, str], record_type: str, record_id: str,
                record_version: int, content_hash: str, required_meaning: str,
                required_permission: str, segregation: Sequence[SegregationCheck] = ()
                ) -> Signature:
    """Sign version ``record_version`` (content ``content_hash``) of a record as ``user``, the
    authenticated user. Flushes, never commits.

    Raises with nothing written: InvalidInput (meaning differs, 422), NotPermitted (403).
    Raises after auditing ``signature.refused`` (``commit_before_raise``): SignatureRefused
    (403), SegregationOfDuties (403), AccountLocked (423, the failure that locked it).
    Raises Conflict (409), nothing counted, when the password was right but changed meanwhile.
    """
    target = {"id": record_id, "type": record_type, "version": record_version}
    refusal = refusal_before_password(security, user, credentials, required_meaning,
                                      required_permission, segregation)
    ahead = _verified_ahead(credentials)
    _judge_signer(session, security, user, credentials, target, required_meaning, refusal,
                  ahead)
    key_row, private_key = _unlock_key(session, security, user, credentials["password"],
                                       target, required_meaning, ahead)
    return _apply(session, user, target, content_hash, required_meaning, key_row, private_key)


def refuse_known_refusal(session: Session, security: Security, *, user: User,
                         credentials: Mapping[str, str], record_type: str, record_id: str,
                         record_version: int, required_meaning: str,
                         required_permission: str,
                         segregation: Sequence[SegregationCheck] = ()) -> None:
    """Refuse now, as ``sign_record`` would, a signature already known to be refused: by
    ``refusal_before_password``, or for a password the look-ahead (``verify_ahead``) found
    wrong, which is counted toward the lockout and throttled; TooManyAttempts (429, nothing
    written) for a signer over the rate limit. Returns quietly otherwise, having written
    nothing; ``sign_record`` then judges the password under its locks. Called before a
    record type's readiness rules (qms.records.service.apply_transition), so that they
    never hide a wrong password. Flushes, never commits."""
    refusal = refusal_before_password(security, user, credentials, required_meaning,
                                      required_permission, segregation)
    ahead = _verified_ahead(credentials)
    if refusal is None and ahead is None:
        security.throttle.check(user.username)
    if refusal is None and (ahead is None or ahead.verdict.matches):
        return
    target = {"id": record_id, "type": record_type, "version": record_version}
    _judge_signer(session, security, user, credentials, target, required_meaning, refusal,
                  ahead)


def _judge_signer(session: Session, security: Security, user: User,
                  credentials: Mapping[str, str], target: dict[str, Any], meaning: str,
                  refusal: DomainError | None, ahead: VerifiedAhead | None) -> None:
    """Raise the audited refusal (``commit_before_raise``), or Conflict (409, nothing
    counted) for a right password whose hash changed meanwhile; return when the signer's
    credentials hold. The look-ahead's admission, if any, is this check's."""
    if refusal is None:
        check = check_credentials(session, security, user.username, credentials["password"],
                                  purpose="signature", verdict=ahead and ahead.verdict,
                                  attempt=ahead and ahead.attempt)
        if isinstance(check.error, Conflict):
            raise check.error
        refusal = None if check.ok else _as_signing_error(check.error)
    if refusal is not None:
        raise _refused(session, user, target, meaning, refusal)


def refusal_before_password(security: Security, user: User, credentials: Mapping[str, str],
                            required_meaning: str, required_permission: str,
                            segregation: Sequence[SegregationCheck] = ()) -> DomainError | None:
    """What refuses ``user``'s signature whatever the password: raises InvalidInput (the
    credentials or the meaning, 422) and NotPermitted (403), which nothing records; returns
    the refusal ``sign_record`` audits (an account that may not sign, segregation of
    duties); None when only the password is left to check. Cheap and writes nothing, so the
    signature look-ahead runs it before it hashes anything."""
    _check_request(credentials, required_meaning)
    if not security.roles.allows(user.roles, required_permission):
        raise NotPermitted(f"permission {required_permission!r} is required to sign this")
    return _ineligible(security, user, credentials) or _segregation_refusal(user, segregation)


@dataclass(frozen=True)
class VerifiedAhead:
    """A signer's password hashed, and their key unwrapped, before the request's write
    transaction began (see ``verify_ahead``). Holds a digest of the password, not the
    password, to recognise the request it belongs to."""
    username: str
    password_digest: bytes
    verdict: PasswordVerdict
    key_id: str | None
    sealed: bytes | None
    private_key: Ed25519PrivateKey | None
    # the rate limit's admission of this check, held until the request ends
    attempt: Attempt | None = None

    def opened(self, key_row: keys.SigningKey) -> bool:
        """True when this is the key that was unwrapped, sealed as it was then, and it may
        sign (a key flagged ``replace_before_signing`` never does)."""
        return (self.private_key is not None and key_row.key_id == self.key_id
                and key_row.wrapped_private_key == self.sealed
                and not key_row.replace_before_signing)


def verify_ahead(reader: Session, security: Security, username: str, password: str) -> None:
    """Do a signature's slow work now, on a reader, before the request opens its writer:
    argon2 on the password and scrypt on the signing key (together about 0.3 s at production
    cost) would otherwise run while SQLite's write lock, or PostgreSQL's locks on the record
    and the user, are held. Writes nothing and decides nothing: ``sign_record`` (or, for a
    wrong password, ``refuse_known_refusal``) records the outcome under its locks, re-reading
    the counters. The key is unwrapped whether or not the password matched, so the time
    this takes says nothing about the password. The caller first makes sure that nothing but
    the password can refuse the signature (``refusal_before_password``), so a request
    refused anyway costs no hashing. The rate limit admits the check first (a throttled
    signer gets nothing hashed; ``sign_record`` refuses them); the admission is held until
    the request ends (``end_look_ahead``), and a failure is counted then. Only within a
    request."""
    admission = ExitStack()
    try:
        attempt = admission.enter_context(security.throttle.attempt(username))
    except TooManyAttempts:
        return
    g.signature_admission = admission
    verdict = verify_password(reader, security, username, password)
    key_row = _active_key_of(reader, username)
    private_key = None
    if key_row is not None:
        try:
            private_key = keys.unwrap(key_row, password)
        except keys.KeyUnwrapError:
            pass
    g.signature_verified_ahead = VerifiedAhead(
        username, _digest(password), verdict, key_row and key_row.key_id,
        key_row and key_row.wrapped_private_key, private_key, attempt)


def end_look_ahead(_error: BaseException | None = None) -> None:
    """At the end of the request: the look-ahead's admission ends, its failure (if the
    check failed) counted in the rate limit's windows."""
    admission = g.pop("signature_admission", None)
    if admission is not None:
        admission.close()


def _active_key_of(reader: Session, username: str) -> keys.SigningKey | None:
    user_id = reader.scalar(select(User.id).where(User.username == username))
    return None if user_id is None else keys.active_key(reader, user_id)


def _verified_ahead(credentials: Mapping[str, str]) -> VerifiedAhead | None:
    """The work ``verify_ahead`` did for exactly these credentials in this request, if any."""
    ahead = g.get("signature_verified_ahead") if has_request_context() else None
    if ahead is None or ahead.username != credentials.get("username"):
        return None
    if not hmac.compare_digest(ahead.password_digest, _digest(credentials.get("password", ""))):
        return None
    return ahead


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()


def _check_request(credentials: Mapping[str, str], required: str) -> None:
    for name in ("username", "password"):
        if not credentials.get(name):
            raise InvalidInput(f"the signature needs the signer's {name}",
                               field=f"signature.{name}")
    meaning = credentials.get("meaning")
    if meaning != required:
        raise InvalidInput(f"this signature means {required!r}; the request says {meaning!r}",
                           field="signature.meaning")


def _ineligible(security: Security, user: User, credentials: Mapping[str, str]
                ) -> DomainError | None:
    """Why this account may not sign at all (checked before the password)."""
    if credentials.get("username") != user.username:
        return SignatureRefused("the signature username must be the authenticated user's")
    if not user.active:
        return SignatureRefused("the account is deactivated")
    if ADMIN_ROLE in user.roles:
        return SignatureRefused("administrators may sign no GMP record")
    if user.is_service:
        return SignatureRefused("service accounts cannot sign")
    if user.active and not user.locked and password_change_due(security, user):
        return SignatureRefused("the password is temporary or expired; change it before signing")
    return None


def _segregation_refusal(user: User, checks: Sequence[SegregationCheck]) -> DomainError | None:
    for check in checks:
        try:
            check(user.username)
        except SegregationOfDuties as error:
            return error
    return None


def _as_signing_error(error: DomainError) -> DomainError:
    # a locked account answers 423; every other credential failure is a refused signature
    if isinstance(error, AccountLocked):
        return error
    return SignatureRefused(f"signature refused: {error.detail}")


def _refused(session: Session, user: User, target: dict[str, Any], meaning: str,
             error: DomainError) -> DomainError:
    """Audit the refusal and mark the error so that the endpoint commits it before it
    answers (qms.errors.keeping_writes)."""
    record_event(session, actor=user.username, action=AuditAction.Esign.SIGNATURE_REFUSED,
                 data={"record": target, "meaning": meaning, "why": error.detail},
                 entity=(target["type"], target["id"]))
    return keeping_writes(error)


def _unlock_key(session: Session, security: Security, user: User, password: str,
                target: dict[str, Any], meaning: str, ahead: VerifiedAhead | None
                ) -> tuple[keys.SigningKey, Ed25519PrivateKey]:
    """The key to sign with, and its private half. Called only after the password was
    verified, so a key from before this version (``replace_before_signing``; a backup from a
    temporary password's time may open it) is replaced by one sealed under this password and
    never signs, even when ``verify_ahead`` unwrapped it."""
    key_row = keys.active_key(session, user.id)
    if key_row is not None and key_row.replace_before_signing:
        new_key = keys.seal_new_key(password, security.key_wrap_log_n)
        stored = keys.replace_legacy_key(session, key_row, username=user.username,
                                         new_key=new_key)
        return stored, new_key.private_key
    try:
        if key_row is None:
            raise keys.KeyUnwrapError("the user has no active signing key")
        if ahead is not None and ahead.opened(key_row):
            return key_row, ahead.private_key
        return key_row, keys.unwrap(key_row, password)
    except keys.KeyUnwrapError as error:
        raise _refused(session, user, target, meaning,
                       SignatureRefused(f"signature refused: {error}")) from None


def _apply(session: Session, user: User, target: dict[str, Any], content_hash: str,
           meaning: str, key_row: keys.SigningKey, private_key: Ed25519PrivateKey) -> Signature:
    at = utcnow()
    payload = signed_payload(at=at, content_hash=content_hash, meaning=meaning,
                             name=user.full_name, target=target, signer=user.username)
    encoded = canonical_bytes(payload)
    signature_b64 = base64.b64encode(private_key.sign(encoded)).decode("ascii")
    row = Signature(record_type=target["type"], record_id=target["id"],
                    record_version=target["version"], content_hash=content_hash,
                    meaning=meaning, signer=user.username, name=user.full_name, at=at,
                    key_id=key_row.key_id, signature=signature_b64,
                    signed_payload=encoded.decode("utf-8"))
    session.add(row)
    session.flush()
    record_event(session, actor=user.username, action=AuditAction.Esign.SIGNATURE_APPLIED,
                 data={"signature_id": row.id, "signed_payload": payload,
                       "key_id": key_row.key_id, "signature": signature_b64},
                 entity=(target["type"], target["id"]))
    return row


def signed_payload(*, at: datetime, content_hash: str, meaning: str, name: str,
                   target: Mapping[str, Any], signer: str) -> dict[str, Any]:
    """The document whose canonical JSON is signed."""
    return {"at": utc_timestamp(at), "content_hash": content_hash, "meaning": meaning,
            "name": name, "signer": signer,
            "record": {"id": target["id"], "type": target["type"], "version": target["version"]}}


def payload_of(signature: Signature) -> dict[str, Any]:
    """Rebuild the signed document from the signature row's columns."""
    return signed_payload(at=signature.at, content_hash=signature.content_hash,
                          meaning=signature.meaning, name=signature.name,
                          target={"id": signature.record_id, "type": signature.record_type,
                                  "version": signature.record_version},
                          signer=signature.signer)


def verify_signature(signature: Signature, public_key_bytes: bytes,
                     version: RecordVersion | None = None) -> bool:
    """True when the columns rebuild exactly the stored signed bytes, the Ed25519 signature
    over them verifies with ``public_key_bytes``, and (given ``version``) that stored version
    is the signed one and its content still hashes to the signed content_hash."""
    expected = canonical_bytes(payload_of(signature))
    if expected != signature.signed_payload.encode("utf-8"):
        return False
    if version is not None and not _signed_version(signature, version):
        return False
    try:
        public_key = Ed25519PublicKey.from_public_bytes(public_key_bytes)
        public_key.verify(base64.b64decode(signature.signature, validate=True), expected)
    except (InvalidSignature, ValueError):
        return False
    return True


def _signed_version(signature: Signature, version: RecordVersion) -> bool:
    content_hash = hashlib.sha256(version.content.encode("utf-8")).hexdigest()
    return ((version.record_type, version.record_id, version.version)
            == (signature.record_type, signature.record_id, signature.record_version)
            and content_hash == version.content_hash == signature.content_hash)


def verify_stored_signature(session: Session, signature: Signature) -> bool:
    """verify_signature with the signer's public key (by key id) and the signed version."""
    key_row = session.get(keys.SigningKey, signature.key_id)
    version = session.scalar(select(RecordVersion).where(
        RecordVersion.record_type == signature.record_type,
        RecordVersion.record_id == signature.record_id,
        RecordVersion.version == signature.record_version))
    if key_row is None or version is None:
        return False
    return verify_signature(signature, key_row.public_key, version)


def signatures_of(session: Session, record_type: str, record_id: str) -> list[Signature]:
    return list(session.scalars(select(Signature).where(
        Signature.record_type == record_type, Signature.record_id == record_id)
        .order_by(Signature.id)))


def signature_of_current_version(session: Session, record) -> Signature | None:
    """The signature applied to the record's current version (the decision just signed),
    if any."""
    return session.scalar(select(Signature).where(
        Signature.record_type == record.record_type, Signature.record_id == record.number,
        Signature.record_version == record.version).order_by(Signature.id.desc()))


def manifestation(signature: Signature) -> dict[str, str]:
    """What a person sees (Part 11 §11.50): printed name, username, meaning, and the date
    and time with its UTC offset."""
    at = signature.at.astimezone(timezone.utc).isoformat(timespec="seconds")
    return {"name": signature.name, "username": signature.signer, "meaning": signature.meaning,
            "at": at, "text": f"{signature.name} ({signature.signer}), {signature.meaning}, {at}"}


def require_distinct(signer: str, usernames: Iterable[str], why: str) -> None:
    """Segregation of duties: refuse when ``signer`` is one of ``usernames``."""
    if signer in set(usernames):
        raise SegregationOfDuties(why)


def not_author(record: Any, signer: str, editors: Iterable[str] = ()) -> None:
    """Nobody signs off their own record: not its creator, nor anyone who edited it."""
    require_distinct(signer, {record.created_by, *editors},
                     f"{signer} is an author of {record.number} and may not sign it")
