"""Stand-alone verifier of a QMS audit trail export (format qms-audit-export/1).

    python -m audit.verify_export EXPORT.jsonl --public-key KEY [--public-key KEY ...]
    python verify_export.py EXPORT.jsonl --public-key KEY      (this file copied alone)

KEY is the server's public key as PEM, or the JSON document served at
/api/v1/audit/public-key. The file needs only the Python standard library; checkpoint
signatures also need the ``cryptography`` package, and without it (or without a key) they
are reported as unchecked. It imports nothing from the audit package on purpose: it is what
an auditor runs against the system, so it re-implements the published format
(docs/audit-trail-format.md) instead of trusting the system's code.

Checks: the header; every event line is canonical JSON of an event object; seq runs 1, 2,
3, ...; each prev_hash is the previous line's sha256 (64 zeros first); each checkpoint is
signed by a given key and names the hash of the event at its seq, which must be in the file.
Exit status: 0 intact, 1 broken (the first bad seq and the reason are printed), 2 usage.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
import unicodedata

EXPORT_FORMAT = "qms-audit-export/1"
GENESIS_HASH = "0" * 64
MAX_SAFE_INT = 2**53 - 1
EVENT_KEYS = {"action", "actor", "at", "data", "entity", "prev_hash", "reason", "seq"}
CHECKPOINT_KEYS = {"at", "hash", "key_id", "seq"}
CHECKPOINT_PREFIX = b'{"checkpoint":'
HEX64 = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
ACTION = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
SURROGATE = re.compile("[\ud800-\udfff]")


class Broken(Exception):
    """The export does not verify; ``seq`` is the first seq that cannot be vouched for."""

    def __init__(self, seq: int, why: str):
        super().__init__(f"seq {seq}: {why}")
        self.seq, self.why = seq, why


class UsageError(Exception):
    pass


def canonical_json(value) -> bytes:
    """RFC 8785 bytes of a value within the format's limits (ValueError outside them)."""
    return json.dumps(_canonical_value(value), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), allow_nan=False).encode("utf-8")


def _canonical_value(value):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise ValueError("integer outside +-(2**53 - 1)")
        return value
    if isinstance(value, str):
        if SURROGATE.search(value):
            raise ValueError("lone surrogate in a string")
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_canonical_value(item) for item in value]
    if isinstance(value, dict):
        if not all(key.isascii() for key in value):
            raise ValueError("non-ASCII object key")
        return {key: _canonical_value(item) for key, item in value.items()}
    raise ValueError(f"{type(value).__name__} values are not allowed (no floats)")


def parse_canonical(line: bytes):
    """The JSON value of a line that must be exactly its own canonical form."""
    try:
        value = json.loads(line.decode("utf-8"))
        if canonical_json(value) == line:
            return value
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise ValueError(f"not canonical JSON ({exc})") from None
    raise ValueError("not in canonical form (key order, spacing, escapes or NFC differ)")


def check_event(line: bytes, seq: int, prev_hash: str) -> str:
    """Check one event line as event ``seq`` after ``prev_hash``; return its hash."""
    try:
        event = parse_canonical(line)
    except ValueError as exc:
        raise Broken(seq, f"event line {exc}") from None
    problem = event_shape_problem(event)
    if problem:
        raise Broken(seq, problem)
    if event["seq"] != seq:
        raise Broken(seq, f"expected seq {seq} but the next event is seq {event['seq']} "
                          "(events missing or out of order)")
    if event["prev_hash"] != prev_hash:
        if seq == 1:
            raise Broken(1, "the first event's prev_hash is not 64 zeros")
        # the export carries no hash column: the link itself says which event is off
        raise Broken(seq - 1, f"event {seq - 1} hashes to {prev_hash} but event {seq} "
                              f"names prev_hash {event['prev_hash']}: event {seq - 1} was "
                              "altered (or the link of the next one)")
    return hashlib.sha256(line).hexdigest()


def event_shape_problem(event) -> str:
    if not isinstance(event, dict) or set(event) != EVENT_KEYS:
        return "not an event object (keys differ)"
    entity = event["entity"]
    checks = (
        (type(event["seq"]) is int and event["seq"] > 0, "seq is not a positive integer"),
        (isinstance(event["prev_hash"], str) and HEX64.fullmatch(event["prev_hash"]),
         "prev_hash is not 64 lowercase hex digits"),
        (isinstance(event["at"], str) and TIMESTAMP.fullmatch(event["at"]),
         "at is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ"),
        (isinstance(event["actor"], str) and event["actor"].strip(), "actor is empty"),
        (isinstance(event["action"], str) and ACTION.fullmatch(event["action"]),
         "action is not a dotted tag"),
        (entity is None or (isinstance(entity, dict) and set(entity) == {"id", "type"}
                            and all(isinstance(v, str) for v in entity.values())),
         "entity is neither null nor {id, type}"),
        (event["reason"] is None or isinstance(event["reason"], str), "reason is not text"),
        (isinstance(event["data"], dict), "data is not an object"),
    )
    return next((why for passed, why in checks if not passed), "")


def parse_checkpoint(line: bytes) -> tuple[dict, str]:
    """(payload, base64 signature) of a checkpoint line; ValueError when malformed."""
    document = parse_canonical(line)
    if not isinstance(document, dict) or set(document) != {"checkpoint", "signature"}:
        raise ValueError("not a checkpoint line")
    payload, signature = document["checkpoint"], document["signature"]
    if not isinstance(payload, dict) or set(payload) != CHECKPOINT_KEYS:
        raise ValueError("checkpoint payload keys differ")
    if type(payload["seq"]) is not int or not all(
            isinstance(payload[key], str) for key in ("at", "hash", "key_id")):
        raise ValueError("checkpoint field types differ")
    if not isinstance(signature, str):
        raise ValueError("signature is not text")
    return payload, signature


def load_public_keys(paths: list[str]) -> tuple[dict, str]:
    """({key_id: key}, "") or ({}, why signatures cannot be checked)."""
    if not paths:
        return {}, "no --public-key given"
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return {}, "the cryptography package is not installed"
    keys = {}
    for path in paths:
        try:
            with open(path, "rb") as handle:
                text = handle.read()
            pem, claimed = _pem_of(text)
            key = serialization.load_pem_public_key(pem)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot read public key {path}: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"{path} is not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kid = hashlib.sha256(raw).hexdigest()[:16]
        if claimed is not None and claimed != kid:
            raise UsageError(f"{path} says key_id {claimed} but the key's id is {kid}")
        keys[kid] = key
    return keys, ""


def _pem_of(text: bytes) -> tuple[bytes, str | None]:
    """The PEM of a key file: the file itself, or the JSON document's public_key_pem."""
    if text.lstrip().startswith(b"{"):
        document = json.loads(text.decode("utf-8"))
        return document["public_key_pem"].encode("ascii"), document.get("key_id")
    return text, None


class ExportCheck:
    """One pass over the export lines, in order, stopping at the first problem."""

    def __init__(self, keys: dict, wanted: set[int]):
        self.keys, self.wanted = keys, wanted
        self.header = None
        self.last_seq, self.last_hash = 0, GENESIS_HASH
        self.hashes: dict[int, str] = {}
        self.vouched: list[tuple[int, str]] = []  # (seq, at) of verified checkpoints
        self.in_checkpoints = False

    def line(self, number: int, line: bytes) -> None:
        if number == 1:
            self.header = check_header(line)
        elif line.startswith(CHECKPOINT_PREFIX):
            self.in_checkpoints = True
            self.checkpoint(number, line)
        elif self.in_checkpoints:
            raise Broken(self.last_seq + 1, f"line {number}: an event after the checkpoints")
        else:
            seq = self.last_seq + 1
            self.last_hash = check_event(line, seq, self.last_hash)
            self.last_seq = seq
            if seq in self.wanted:
                self.hashes[seq] = self.last_hash

    def checkpoint(self, number: int, line: bytes) -> None:
        try:
            payload, signature = parse_checkpoint(line)
        except ValueError as exc:
            raise Broken(self.after_vouched(), f"line {number}: {exc}") from None
        seq, where = payload["seq"], f"checkpoint at seq {payload['seq']} (line {number})"
        self.check_signature(payload, signature, where)
        if seq > self.last_seq:
            raise Broken(self.last_seq + 1, f"{where} lies beyond the last event "
                         f"{self.last_seq}: {span(self.last_seq + 1, seq)} removed")
        if self.hashes.get(seq) != payload["hash"]:
            raise Broken(self.after_vouched(), f"{where} says hash {payload['hash']} but "
                         f"event {seq} has hash {self.hashes.get(seq)}: the chain was rewritten")
        self.vouched.append((seq, payload["at"]))

    def check_signature(self, payload: dict, signature: str, where: str) -> None:
        if not self.keys:
            return
        key = self.keys.get(payload["key_id"])
        if key is None:
            raise Broken(self.after_vouched(), f"{where} is signed with unknown key "
                                               f"{payload['key_id']}")
        from cryptography.exceptions import InvalidSignature
        try:
            key.verify(base64.b64decode(signature, validate=True), canonical_json(payload))
        except (InvalidSignature, binascii.Error, ValueError):
            raise Broken(self.after_vouched(), f"{where}: the signature does not verify "
                                               f"under key {payload['key_id']}") from None

    def after_vouched(self) -> int:
        return (self.vouched[-1][0] if self.vouched else 0) + 1

    def finish(self) -> None:
        if self.header is None:
            raise Broken(1, "the file is empty")
        head = self.header["head"]
        if (head["seq"], head["hash"]) != (self.last_seq, self.last_hash):
            raise Broken(min(head["seq"], self.last_seq) + 1,
                         f"the header names head seq {head['seq']} hash {head['hash']} but "
                         f"the events end at seq {self.last_seq} hash {self.last_hash}")


def check_header(line: bytes) -> dict:
    try:
        header = parse_canonical(line)
        ok = (isinstance(header, dict) and header.get("format") == EXPORT_FORMAT
              and isinstance(header.get("head"), dict)
              and set(header["head"]) == {"hash", "seq"}
              and type(header["head"]["seq"]) is int and isinstance(header["head"]["hash"], str))
    except ValueError:
        ok = False
    if not ok:
        raise Broken(1, f"line 1 is not a {EXPORT_FORMAT} header")
    return header


def span(first: int, last: int) -> str:
    return f"event {first}" if first == last else f"events {first}..{last}"


def read_lines(path: str):
    """(number, bytes) of each line without its end ("\\n", or "\\r\\n" after a copy)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\n").removesuffix(b"\r")


def checkpoint_seqs(path: str) -> set[int]:
    """First pass: the seqs whose hashes the checkpoint lines will ask for."""
    wanted = set()
    for _number, line in read_lines(path):
        if line.startswith(CHECKPOINT_PREFIX):
            try:
                wanted.add(parse_checkpoint(line)[0]["seq"])
            except ValueError:
                pass  # reported in order by the second pass
    return wanted


def verify(path: str, keys: dict) -> ExportCheck:
    """Verify the export at ``path``; raises Broken at the first problem."""
    check = ExportCheck(keys, checkpoint_seqs(path))
    for number, line in read_lines(path):
        check.line(number, line)
    check.finish()
    return check


def report(check: ExportCheck, unchecked: str) -> None:
    print(f"INTACT: {check.last_seq} events, head seq {check.last_seq} hash {check.last_hash}")
    if check.vouched:
        seq, at = check.vouched[-1]
        signed = "signatures NOT checked" if unchecked else "signatures valid"
        print(f"{len(check.vouched)} checkpoint(s) match the chain ({signed}); "
              f"the last at seq {seq}, signed {at}")
        if seq < check.last_seq:
            print(f"NOTE: {span(seq + 1, check.last_seq)} not yet under a checkpoint")
    else:
        print("NOTE: the export holds no checkpoint; a rewrite of the whole chain would "
              "not be detected")
    if unchecked and check.vouched:
        print(f"WARNING: checkpoint signatures were not checked: {unchecked}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_export", description="Verify a QMS audit trail export (JSON lines).")
    parser.add_argument("export", help="the exported .jsonl file")
    parser.add_argument("--public-key", action="append", default=[], metavar="KEY",
                        help="the server's public key: PEM, or the JSON document of "
                             "/api/v1/audit/public-key (repeat for retired keys)")
    args = parser.parse_args(argv)
    try:
        keys, unchecked = load_public_keys(args.public_key)
        check = verify(args.export, keys)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    except Broken as exc:
        print(f"BROKEN at seq {exc.seq}: {exc.why}")
        return 1
    report(check, unchecked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
