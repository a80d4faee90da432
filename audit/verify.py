"""Verification of the audit chain and its checkpoints inside the database.

Checks, in seq order: seq continuity from 1, ``prev_hash`` equals the previous hash (64 zeros
for seq 1), the stored hash is sha256 of the stored canonical bytes, and the queryable
columns agree with the canonical JSON. Then every checkpoint (database rows and the external
file): a valid signature under a known key, and the event at its seq exists with its hash.

``first_bad_seq`` is the lowest seq the verifier cannot vouch for: the first event failing a
chain check, the first missing event when a checkpoint or the head lies beyond the end, and
for a checkpoint that is forged or disagrees with the chain, the seq after the last
checkpoint that did verify (the rewrite happened somewhere after it).
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from audit.canonical import CanonicalError, canonical_text
from audit.checkpoints import (Checkpoint, CheckpointFileError, key_id, list_checkpoints,
                               read_checkpoint_file)
from audit.schema import GENESIS_HASH
from audit.streaming import canonical_bytes_sql, stream_rows
from audit.trail import connection_of, head

CHUNK_ROWS = 20000
_INFINITY = float("inf")
# the C implementation of the string encoder the canonical encoding itself uses
_ENCODE_STRING = json.encoder.encode_basestring


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_checked: int
    head_seq: int          # last event that passed the chain checks
    head_hash: str
    first_bad_seq: int | None
    problem: str | None    # what is wrong at first_bad_seq, for humans
    checkpoints_checked: int  # signature valid and matching the chain
    problems: tuple[str, ...] = ()  # every problem found, lowest seq first


@dataclass
class _Scan:
    """State of the streaming walk: where it is, and the hashes checkpoints asked for."""
    wanted: set[int]
    next_seq: int = 1
    last_hash: str = GENESIS_HASH
    found: dict[int, str] = field(default_factory=dict)
    bad: tuple[int, str] | None = None  # (seq, why) of the first failing event


def verify_chain(connection: Session | Connection, *,
                 public_keys: Mapping[str, Ed25519PublicKey] | None = None,
                 checkpoint_file: Path | None = None,
                 progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Verify the whole chain and every checkpoint; read-only, streams the events.

    ``public_keys`` maps key ids to the server's public keys (current and retired); a
    checkpoint under any other key is a problem. ``checkpoint_file`` must hold every
    checkpoint ever written; a database checkpoint missing from it is a problem.
    ``progress(events_checked)`` is called after each chunk of events.
    Head and checkpoints are read before the events: anything they mention was committed
    before the scan began, so concurrent appends cannot cause false alarms.
    """
    public_keys = dict(public_keys or {})
    _check_key_ids(public_keys)
    connection = connection_of(connection)
    stored_head = head(connection)
    pending: list[tuple[float, str]] = []  # (checkpoint seq, why): placed after the scan
    checkpoints = list_checkpoints(connection)
    checkpoints += _file_checkpoints(checkpoint_file, checkpoints, pending)
    signed = _signed_checkpoints(checkpoints, public_keys, pending)
    scan = _Scan(wanted={cp.seq for cp in signed} | {stored_head.seq})
    _walk_events(connection, scan, progress)
    problems = [scan.bad] if scan.bad else []
    problems += _head_problems(stored_head.seq, stored_head.hash, scan)
    vouched = _match_checkpoints(signed, scan, problems, pending)
    problems += [(_after_last_vouched(vouched, at_seq), why) for at_seq, why in pending]
    return _result(scan, problems, len(vouched))


def _check_key_ids(public_keys: Mapping[str, Ed25519PublicKey]) -> None:
    for kid, public_key in public_keys.items():
        if key_id(public_key) != kid:
            raise ValueError(f"public key listed as {kid!r} has key id {key_id(public_key)}")


def _file_checkpoints(path: Path | None, in_database: list[Checkpoint],
                      pending: list[tuple[float, str]]) -> list[Checkpoint]:
    """Checkpoints of the external file; every database checkpoint must be among them."""
    if path is None:
        return []
    try:
        from_file = read_checkpoint_file(path) if Path(path).exists() else []
    except (CheckpointFileError, OSError) as exc:
        pending.append((_INFINITY, f"checkpoint file unreadable: {exc}"))
        return []
    lines = {(cp.canonical, cp.signature) for cp in from_file}
    for cp in in_database:
        if (cp.canonical, cp.signature) not in lines:
            pending.append((cp.seq, f"checkpoint at seq {cp.seq} ({cp.source}) is missing "
                                    f"from the checkpoint file {path}"))
    return from_file


def _signed_checkpoints(checkpoints: list[Checkpoint],
                        public_keys: Mapping[str, Ed25519PublicKey],
                        pending: list[tuple[float, str]]) -> list[Checkpoint]:
    """The checkpoints whose signature verifies under a known key; the rest go to pending."""
    valid = []
    for cp in checkpoints:
        why = _signature_problem(cp, public_keys)
        if why:
            pending.append((cp.seq, f"checkpoint at seq {cp.seq} ({cp.source}): {why}"))
        else:
            valid.append(cp)
    return valid


def _signature_problem(cp: Checkpoint, public_keys: Mapping[str, Ed25519PublicKey]) -> str:
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


def _walk_events(connection: Connection, scan: _Scan,
                 progress: Callable[[int], None] | None) -> None:
    sql = (f"SELECT seq, prev_hash, hash, {canonical_bytes_sql(connection)}, at, actor, "
           "action, entity_type, entity_id, reason FROM audit_events ORDER BY seq")
    chunks = stream_rows(connection, sql, CHUNK_ROWS)
    try:
        for rows in chunks:
            bad_index = _check_rows(rows, scan)
            if progress is not None:
                progress(scan.next_seq - 1)
            if bad_index is not None:
                scan.bad = _explain(rows[bad_index], scan.next_seq, scan.last_hash)
                return
    finally:
        chunks.close()


def _check_rows(rows: list[tuple], scan: _Scan) -> int | None:
    """Check rows in order; return the index of the first bad row, or None.

    This is the hot loop (one pass per event, a million events in seconds), so it only
    decides; _explain says why. Column agreement is checked without parsing JSON: the
    canonical text must start with ``{"action":A,"actor":B,"at":C,"data":`` and end with
    ``,"entity":E,"prev_hash":P,"reason":R,"seq":N}`` rebuilt from the columns with the
    canonical string encoder. That is sound because a JSON string literal ends at its first
    unescaped quote, so these encoded literals can neither end early nor run on: a prefix
    match fixes the first four members of the top-level object and a suffix match (which
    must start outside any string: its first quote follows a comma) fixes the last four.
    Whether the data in between is well-formed is the hash's business: the bytes are
    exactly those the canonical encoder wrote, or the hash check fails.
    """
    enc, wanted, found = _ENCODE_STRING, scan.wanted, scan.found
    start = expected = scan.next_seq
    last = scan.last_hash
    try:
        for seq, prev, digest, text, at, actor, action, etype, eid, reason in rows:
            entity = ("null" if etype is None and eid is None
                      else f'{{"id":{enc(eid)},"type":{enc(etype)}}}')
            note = "null" if reason is None else enc(reason)
            # prev is compared with a real hex digest before it is embedded unencoded
            if (seq != expected or prev != last or sha256(text).hexdigest() != digest
                    or not text.startswith(f'{{"action":{enc(action)},"actor":{enc(actor)},'
                                           f'"at":{enc(at)},"data":'.encode())
                    or not text.endswith(f',"entity":{entity},"prev_hash":"{prev}",'
                                         f'"reason":{note},"seq":{seq}}}'.encode())):
                break
            if seq in wanted:
                found[seq] = digest
            expected += 1
            last = digest
        else:
            scan.next_seq, scan.last_hash = expected, last
            return None
    except (TypeError, AttributeError):  # a NULL or non-text value where text belongs
        pass
    scan.next_seq, scan.last_hash = expected, last
    return expected - start


def _explain(row: tuple, expected: int, last_hash: str) -> tuple[int, str]:
    """(first bad seq, why) for a row that failed _check_rows."""
    seq, prev, digest, text = row[:4]
    if seq != expected:
        if isinstance(seq, int) and seq > expected:
            return expected, (f"event {expected} is missing: the event after seq "
                              f"{expected - 1} is seq {seq}")
        return expected, f"seq {seq!r} found where seq {expected} was expected"
    if prev != last_hash:
        return seq, (f"event {seq}: prev_hash {prev} is not the hash of event {seq - 1} "
                     f"({last_hash}): events removed, reordered or replaced")
    if not isinstance(text, bytes) or sha256(text).hexdigest() != digest:
        return seq, (f"event {seq}: stored hash {digest} is not sha256 of the stored "
                     f"canonical text: the event's content was altered")
    return seq, f"event {seq}: {_column_disagreement(row)}"


def _column_disagreement(row: tuple) -> str:
    seq, prev, _digest, text, at, actor, action, etype, eid, reason = row
    try:
        document = json.loads(text.decode("utf-8"))
        entity = document["entity"]
        in_json = {"seq": document["seq"], "prev_hash": document["prev_hash"],
                   "at": document["at"], "actor": document["actor"],
                   "action": document["action"], "reason": document["reason"],
                   "entity_type": entity and entity["type"], "entity_id": entity and entity["id"]}
    except (ValueError, KeyError, TypeError):
        return "the canonical text is not an event object"
    columns = {"seq": seq, "prev_hash": prev, "at": at, "actor": actor, "action": action,
               "reason": reason, "entity_type": etype, "entity_id": eid}
    differing = [name for name in columns if columns[name] != in_json[name]]
    if not differing:
        return "the canonical text is not in canonical form around the queryable fields"
    return ("queryable column(s) " + ", ".join(differing) +
            " disagree with the canonical JSON (a column was edited)")


def _head_problems(head_seq: int, head_hash: str, scan: _Scan) -> list[tuple[int, str]]:
    if scan.bad and scan.bad[0] <= head_seq:
        return []  # the walk stopped before the head; the chain problem says enough
    last_seq = scan.next_seq - 1
    if head_seq > last_seq:
        return [(last_seq + 1, f"the head row says seq {head_seq} but the chain ends at seq "
                               f"{last_seq}: events {last_seq + 1}..{head_seq} are missing")]
    expected = GENESIS_HASH if head_seq == 0 else scan.found.get(head_seq)
    if head_hash != expected:
        return [(max(head_seq, 1), f"the head row's hash {head_hash} differs from "
                                   f"event {head_seq}'s hash {expected}")]
    return []


def _match_checkpoints(signed: list[Checkpoint], scan: _Scan, problems: list,
                       pending: list[tuple[float, str]]) -> list[int]:
    """Seqs of the signed checkpoints that match the chain; mismatches go to pending."""
    last_seq = scan.next_seq - 1
    vouched = []
    for cp in signed:
        if cp.seq > last_seq:
            if scan.bad is None:  # else the walk stopped early, and that is the problem
                problems.append((last_seq + 1, (
                    f"checkpoint at seq {cp.seq} ({cp.source}, signed {cp.at}) lies beyond "
                    f"the chain's end at seq {last_seq}: events {last_seq + 1}..{cp.seq} "
                    f"were removed")))
        elif scan.found.get(cp.seq) == cp.hash:
            vouched.append(cp.seq)  # once per checkpoint: database row and file line
        else:
            pending.append((cp.seq, (
                f"checkpoint at seq {cp.seq} ({cp.source}, signed {cp.at}) says hash "
                f"{cp.hash} but event {cp.seq} has hash {scan.found.get(cp.seq)}: "
                f"the chain was rewritten")))
    return sorted(vouched)


def _after_last_vouched(vouched: list[int], at_seq: float) -> int:
    """The seq after the last verified checkpoint below ``at_seq`` (1 when there is none)."""
    below = [seq for seq in vouched if seq < at_seq]
    return (below[-1] if below else 0) + 1


def _result(scan: _Scan, problems: list[tuple[int, str]], vouched: int) -> VerifyResult:
    problems.sort(key=lambda problem: problem[0])  # stable: equal seqs keep their order
    first = problems[0] if problems else (None, None)
    return VerifyResult(ok=not problems, events_checked=scan.next_seq - 1,
                        head_seq=scan.next_seq - 1, head_hash=scan.last_hash,
                        first_bad_seq=first[0], problem=first[1],
                        checkpoints_checked=vouched, problems=tuple(p[1] for p in problems))
