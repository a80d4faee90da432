"""Signed checkpoints: the chain head anchored outside the database.

A checkpoint is the canonical JSON ``{"at", "hash", "key_id", "purpose", "seq", "site"}``
signed with the server's Ed25519 key; ``site`` names the instance, so that a copy's
checkpoints are not taken for production's, and ``purpose`` says whether it closes an export
(``export``: the chain held exactly these events when the export was made) or is any other
(``routine``). Checkpoints written before sites, or purposes, existed lack those members. It
is stored in ``audit_checkpoints`` *and* appended as one line
``{"checkpoint": {...}, "signature": "<base64>"}`` to an external JSON-lines file, so that
rewriting or truncating the whole chain (and the checkpoint rows with it) is still detected.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from audit.canonical import CanonicalError, canonical_text, utc_timestamp
from audit.schema import audit_checkpoints
from audit.succession import current_site, read_succession
from audit.trail import AuditError, append, appended_in_transaction, connection_of, lock_head

CHECKPOINT_ACTION = "audit.checkpoint.signed"
ROUTINE, EXPORT = "routine", "export"  # a checkpoint's purpose
PURPOSES = (ROUTINE, EXPORT)
PAYLOAD_KEYS = frozenset({"at", "hash", "key_id", "purpose", "seq", "site"})
# written by earlier versions: before purposes existed, and before sites existed
SITE_PAYLOAD_KEYS = frozenset({"at", "hash", "key_id", "seq", "site"})
LEGACY_PAYLOAD_KEYS = frozenset({"at", "hash", "key_id", "seq"})
ACCEPTED_PAYLOAD_KEYS = (PAYLOAD_KEYS, SITE_PAYLOAD_KEYS, LEGACY_PAYLOAD_KEYS)


class CheckpointFileError(ValueError):
    """The external checkpoint file cannot be read as checkpoint lines."""


class SigningKeyMissing(FileNotFoundError):
    """The audit signing key file is missing: it is created once, by ``qms init``, and
    replaced only by the audited key rotation; never silently re-created."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain had head (seq, hash) at time ``at``."""
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str  # base64 of the Ed25519 signature over the UTF-8 of ``canonical``
    canonical: str  # canonical JSON of the payload
    source: str     # where it was read from, for messages ("database row 3", "file line 7")
    site: str | None = None  # None: a legacy checkpoint, written before sites existed
    purpose: str | None = None  # ROUTINE or EXPORT; None: written before purposes existed

    def payload(self) -> dict:
        payload = {"at": self.at, "hash": self.hash, "key_id": self.key_id, "seq": self.seq}
        if self.site is not None:
            payload["site"] = self.site
        if self.purpose is not None:
            payload["purpose"] = self.purpose
        return payload

    def line(self) -> str:
        """The JSON line of the external file and of exports (without the newline)."""
        return canonical_text({"checkpoint": self.payload(), "signature": self.signature})


def load_signing_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """Load the PEM private key at ``path``; SigningKeyMissing when there is none.

    The key is unencrypted so that scheduled checkpoints need no operator; the file mode
    protects it.
    """
    path = Path(path)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyMissing(
            f"the audit signing key {path} is missing; it is created by `qms init` and "
            "replaced only by `qms audit rotate-key` (restore it from the backup)") from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def create_signing_key(path: str | os.PathLike) -> bool:
    """Create the key at ``path`` unless one exists (mode 0600, parents created); True when
    created. For ``qms init`` only: two processes at once end up with the same key."""
    return _write_new_key(Path(path), Ed25519PrivateKey.generate())


def load_or_create_signing_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """For tests and scratch instances only: the application never creates a key silently."""
    create_signing_key(path)
    return load_signing_key(path)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The key file's bytes: unencrypted PKCS#8 PEM (the file mode protects it)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_new_key(path: Path, key: Ed25519PrivateKey) -> bool:
    """Write ``key`` so that it appears complete or not at all, and never replaces another."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private_pem(key)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic; fails if another process was first
        except FileExistsError:
            return False
        fsync_directory(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of sha256 over the raw 32-byte public key."""
    return sha256(_raw_public_bytes(public_key)).hexdigest()[:16]


def public_key_document(public_key: Ed25519PublicKey) -> dict:
    """What ``GET /api/v1/audit/public-key`` serves and ``verify_export --public-key`` reads."""
    pem = public_key.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"key_id": key_id(public_key), "algorithm": "Ed25519",
            "public_key_pem": pem.decode("ascii"),
            "public_key_b64": base64.b64encode(_raw_public_bytes(public_key)).decode("ascii")}


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def write_checkpoint(target: Session | Connection, *, signing_key: Ed25519PrivateKey,
                     file_path: str | os.PathLike, site: str, actor: str = "system",
                     at: datetime | None = None, purpose: str = ROUTINE,
                     public_keys: Mapping[str, Ed25519PublicKey] | None = None
                     ) -> Checkpoint | None:
    """Sign the current head, store it, append its event and its file line. Never commits.

    ``purpose`` is EXPORT only for the checkpoint that closes an export (audit.export): it
    states that the chain held exactly the events up to its seq at its time. Returns None
    when the chain is empty. AuditError when ``site`` is not the site the chain says this
    instance is (audit.succession.current_site): a process started before a recorded site
    change, or an instance given another id without recording it, would sign checkpoints
    that every verifier refuses.

    ``public_keys`` ({key id: public key}: the current and retired keys, as the verifier
    gets them) let it refuse a key the chain has retired (``_refuse_retired``); without
    them that check is skipped.

    Must run in a transaction that has not appended events yet (AuditError otherwise): the
    file line is written before the caller commits, which is safe only because every event
    up to the signed head is then already committed by others, so a rollback here leaves a
    line that is still true.
    """
    connection = connection_of(target)
    if appended_in_transaction(connection):
        raise AuditError("write_checkpoint needs a transaction without earlier appends")
    top = lock_head(connection)
    if top.seq == 0:
        return None
    chain_site = current_site(connection, {key_id(signing_key.public_key()):
                                           signing_key.public_key()})
    if chain_site is not None and chain_site != site:
        raise AuditError(f"this instance's audit site id is {site!r} but its audit trail "
                         f"says {chain_site!r}: record a change with `qms audit set-site-id`, "
                         "or restart a process started before one")
    _refuse_retired(connection, signing_key, Path(file_path), public_keys or {})
    checkpoint = _signed(signing_key, top.seq, top.hash,
                         utc_timestamp(at if at is not None else datetime.now(UTC)), site,
                         purpose)
    row_id = connection.execute(audit_checkpoints.insert().values(
        seq=checkpoint.seq, hash=checkpoint.hash, at=checkpoint.at, key_id=checkpoint.key_id,
        signature=checkpoint.signature, canonical=checkpoint.canonical)).inserted_primary_key[0]
    append(connection, actor=actor, action=CHECKPOINT_ACTION, at=at,
           data={"hash": checkpoint.hash, "key_id": checkpoint.key_id, "purpose": purpose,
                 "seq": checkpoint.seq, "site": site})
    _append_line(Path(file_path), checkpoint.line())
    return _with_source(checkpoint, f"database row {row_id}")


def _refuse_retired(connection: Connection, signing_key: Ed25519PrivateKey, file_path: Path,
                    public_keys: Mapping[str, Ed25519PublicKey]) -> None:
    """AuditError for a key the chain has retired: a key it was rotated to (an
    audit.key.rotated event) has signed a checkpoint at or after the rotation, as a database
    row or as a line of the checkpoint file whose transaction rolled back (the verifiers
    count both). A process that loaded the key before `qms audit rotate-key` finished must
    not sign with it, or every verifier calls the chain BROKEN from there on. Only
    signatures that verify count, so a planted row cannot stop checkpoints. Asked under the
    head lock: no successor's checkpoint can come between the question and this one."""
    kid = key_id(signing_key.public_key())
    rotations = [rotation for rotation in read_succession(connection).rotations
                 if rotation.old == kid and rotation.new in public_keys]
    if not rotations:  # the common case: nothing to read
        return
    signed = list_checkpoints(connection) + _file_lines_naming(
        file_path, {rotation.new for rotation in rotations})
    for rotation in rotations:
        successor = next((cp for cp in signed if cp.key_id == rotation.new
                          and cp.seq >= rotation.seq
                          and not signature_problem(cp, public_keys)), None)
        if successor is not None:
            raise AuditError(
                f"the audit signing key {kid} is retired: event {rotation.seq} rotated it to "
                f"key {rotation.new}, which signed the checkpoint at seq {successor.seq} "
                f"({successor.source}); this process loaded the key before the rotation: "
                "run the command again (it loads the current key)")


def _file_lines_naming(path: Path, key_ids: set[str]) -> list[Checkpoint]:
    """The checkpoint file's lines that name one of ``key_ids``; a line that does not parse
    is left to the verifiers, which report it."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for number, raw in enumerate(lines, start=1):
        if any(kid.encode("ascii") in raw for kid in key_ids):
            try:
                found.append(_parse_line(raw.decode("utf-8"), f"{path.name} line {number}"))
            except (ValueError, TypeError, KeyError):
                continue
    return found


def signature_problem(cp: Checkpoint, public_keys: Mapping[str, Ed25519PublicKey]) -> str:
    """Why ``cp`` is not a checkpoint signed by a key of ``public_keys``; "" when it is."""
    try:
        if canonical_text(cp.payload()) != cp.canonical:
            return "its columns disagree with the signed payload"
    except CanonicalError as exc:
        return f"malformed payload ({exc})"
    public_key = public_keys.get(cp.key_id)
    if public_key is None:
        return f"signed with unknown key {cp.key_id!r}"
    try:
        public_key.verify(base64.b64decode(cp.signature, validate=True),
                          cp.canonical.encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"signature does not verify under key {cp.key_id}"
    return ""


def _signed(signing_key: Ed25519PrivateKey, seq: int, digest: str, at: str,
            site: str, purpose: str = ROUTINE) -> Checkpoint:
    if not isinstance(site, str) or not site.strip():
        raise AuditError("a checkpoint needs the instance's site id")
    if purpose not in PURPOSES:
        raise AuditError(f"a checkpoint's purpose is one of {', '.join(PURPOSES)}")
    kid = key_id(signing_key.public_key())
    canonical = canonical_text({"at": at, "hash": digest, "key_id": kid, "purpose": purpose,
                                "seq": seq, "site": site})
    signature = base64.b64encode(signing_key.sign(canonical.encode("utf-8"))).decode("ascii")
    return Checkpoint(seq, digest, at, kid, signature, canonical, "new", site, purpose)


def _with_source(checkpoint: Checkpoint, source: str) -> Checkpoint:
    return replace(checkpoint, source=source)


def _append_line(path: Path, line: str) -> None:
    """Append one line durably: written, flushed and fsynced before returning."""
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", newline="\n") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    # a new file's directory entry must be durable too, or a crash can lose the file
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def list_checkpoints(connection: Session | Connection) -> list[Checkpoint]:
    """Every checkpoint row, in seq order, as stored (not verified)."""
    c = audit_checkpoints.c
    rows = connection_of(connection).execute(
        select(c.id, c.seq, c.hash, c.at, c.key_id, c.signature, c.canonical).order_by(c.seq))
    return [Checkpoint(seq, digest, at, kid, signature, canonical, f"database row {row_id}",
                       *_site_and_purpose(canonical))
            for row_id, seq, digest, at, kid, signature, canonical in rows]


def _site_and_purpose(canonical: str) -> tuple[str | None, str | None]:
    """The site and purpose named in a row's signed payload (the table has no columns for
    them: the payload is what is signed, and the verifier compares the other columns with
    it)."""
    try:
        payload = json.loads(canonical)
        site, purpose = payload.get("site"), payload.get("purpose")
    except (ValueError, AttributeError):
        return None, None  # malformed: the verifier reports the row's payload
    return (site if isinstance(site, str) else None,
            purpose if isinstance(purpose, str) else None)


def read_checkpoint_file(path: str | os.PathLike) -> list[Checkpoint]:
    """Parse the external file (not verified); CheckpointFileError names a malformed line."""
    path = Path(path)
    checkpoints = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                raise CheckpointFileError(f"{path} line {number}: incomplete (interrupted write)")
            try:
                checkpoints.append(_parse_line(raw.decode("utf-8"), f"{path.name} line {number}"))
            except (ValueError, TypeError, KeyError) as exc:
                raise CheckpointFileError(f"{path} line {number}: {exc}") from None
    return checkpoints


def _parse_line(line: str, source: str) -> Checkpoint:
    document = json.loads(line)
    payload, signature = document["checkpoint"], document["signature"]
    if (set(document) != {"checkpoint", "signature"}
            or set(payload) not in ACCEPTED_PAYLOAD_KEYS):
        raise CheckpointFileError("unexpected keys")
    if not isinstance(signature, str) or type(payload["seq"]) is not int:
        raise CheckpointFileError("signature must be a string and seq an integer")
    if payload.get("purpose", ROUTINE) not in PURPOSES:
        raise CheckpointFileError(f"purpose must be one of {', '.join(PURPOSES)}")
    try:
        canonical = canonical_text(payload)
    except CanonicalError as exc:
        raise CheckpointFileError(str(exc)) from None
    return Checkpoint(payload["seq"], payload["hash"], payload["at"], payload["key_id"],
                      signature, canonical, source, payload.get("site"), payload.get("purpose"))
