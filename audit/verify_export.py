"""Stand-alone verifier of a QMS audit trail export (qms-audit-export/3, and /2, /1).

    python -m audit.verify_export EXPORT.jsonl --public-key KEY --checkpoints FILE
    python verify_export.py EXPORT.jsonl --public-key KEY --checkpoints FILE  (copied alone)

KEY is the server's public key as PEM, or the JSON document served at
/api/v1/audit/public-key (repeat --public-key for retired keys). The trust root is
--trusted-key KEY when given, else the first --public-key: the key that signed the
instance's first checkpoint, as the IQ record has it (the auditor's own copy, not one
taken from the instance). The chain's first checkpoint must be signed with it, so a chain
rewritten from seq 1 under another key does not verify even when that key is given too.
FILE is the instance's external checkpoint file, audit-checkpoints.jsonl (repeat
--checkpoints for several). The file needs only the Python standard library, plus the
``cryptography`` package for checkpoint signatures. It imports nothing from the audit package on purpose: it is what an auditor runs
against the system, so it re-implements the published format (docs/audit-trail-format.md)
instead of trusting the system's code.

Checks: the header; every event line is canonical JSON of an event object; seq runs 1, 2,
3, ...; each prev_hash is the previous line's sha256 (64 zeros first); the header's head is
the last event, and its exported_at is neither before the first event nor other than the
closing checkpoint's signed time; the export ends with its closing checkpoint, signed for
it (purpose "export") over its last event; every checkpoint, of the export and of the checkpoint
files, is signed by a given key for the export's site and names the hash of the event at its
seq; the audit.checkpoint.signed events agree with the export's checkpoints; every key but
the trust root's is introduced by an audit.key.rotated event that a checkpoint of the
key before it covers, before it signs, and a key signs nothing at a higher seq than its
successor's first checkpoint (it is retired); a /1 or /2 header over checkpoints that name
a site or purpose (members of later formats) was relabelled; the header's site is the
closing checkpoint's; each checkpoint names the site that the
audit.site.changed events say was in effect at its seq. A checkpoint
beyond the last event means the tail was removed, unless it comes from a checkpoint file and
was signed after the export's closing checkpoint (the export is older: a note).

Verdict (the first line printed) and exit status:
  INTACT      0  the chain checks out and the export's closing checkpoint (signed at export
                 time over its last event, purpose "export") verified under a given key
  BROKEN      1  "BROKEN at seq N: why", N the lowest seq that cannot be vouched for
  UNANCHORED  1  the chain is consistent but its last event is under no verified checkpoint
                 (no key, no cryptography package, or no closing checkpoint: a cut export,
                 or one cut at an earlier routine checkpoint, looks like this). Exit 0 with
                 --allow-unanchored only when no key could be used.
  usage error 2  (missing or unreadable file or key, bad arguments)
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

EXPORT_FORMATS = {"qms-audit-export/1": {"exported_at", "format", "head"},
                  "qms-audit-export/2": {"exported_at", "format", "head", "site"},
                  "qms-audit-export/3": {"exported_at", "format", "head", "site"}}
# from /3 on, the closing checkpoint is marked (purpose "export") and is the last line
MARKED_FORMAT = "qms-audit-export/3"
GENESIS_HASH = "0" * 64
MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32  # arrays and objects nest at most this deep, the line's own object included
EVENT_KEYS = {"action", "actor", "at", "data", "entity", "prev_hash", "reason", "seq"}
# current, then as written before purposes existed, then before sites existed
CHECKPOINT_KEYS = ({"at", "hash", "key_id", "purpose", "seq", "site"},
                   {"at", "hash", "key_id", "seq", "site"}, {"at", "hash", "key_id", "seq"})
PURPOSES = ("routine", "export")  # "export": closes an export made at the checkpoint's time
CHECKPOINT_PREFIX = b'{"checkpoint":'
# "action" is an event's first key: this prefix finds the checkpoints' own events
CHECKPOINT_EVENT_PREFIX = b'{"action":"audit.checkpoint.signed",'
# the events that hand signing over: to a new key, or to a new site id (old, new)
HANDOVER_FIELDS = {"audit.key.rotated": ("old_key_id", "new_key_id"),
                   "audit.site.changed": ("old_site", "new_site")}
HANDOVER_PREFIXES = tuple(f'{{"action":"{action}",'.encode() for action in HANDOVER_FIELDS)
CHECKPOINT_EVENT_DATA = ({"hash", "key_id", "purpose", "seq", "site"},
                         {"hash", "key_id", "seq", "site"}, {"hash", "key_id", "seq"})
HEX64 = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
ACTION = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
SURROGATE = re.compile("[\ud800-\udfff]")
UNANCHORED = ("UNANCHORED: the chain is internally consistent but nothing proves it was not "
              "rewritten")
INFINITY = float("inf")
MISSING = object()  # a member an event lacks
MORE_LINES = 10  # further problems printed after the first


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


# a string literal, or the rest of the text after an unclosed quote: linear time, however
# many escaped quotes an unclosed string holds
STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)


def nested_too_deep(text: str) -> bool:
    """Arrays and objects nested deeper than MAX_DEPTH (strings skipped), told before
    parsing so that Python's recursion limit is never what decides."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in re.findall(r"[\[\]{}]", STRING_LITERAL.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def parse_canonical(line: bytes):
    """The JSON value of a line that must be exactly its own canonical form."""
    try:
        text = line.decode("utf-8")
        if nested_too_deep(text):
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        value = json.loads(text)
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
    if not isinstance(payload, dict) or set(payload) not in CHECKPOINT_KEYS:
        raise ValueError("checkpoint payload keys differ")
    if not (type(payload["seq"]) is int and payload["seq"] > 0
            and isinstance(payload["at"], str) and TIMESTAMP.fullmatch(payload["at"])
            and isinstance(payload["hash"], str) and HEX64.fullmatch(payload["hash"])
            and isinstance(payload["key_id"], str)
            and isinstance(payload.get("site", ""), str)
            and payload.get("purpose", "routine") in PURPOSES):
        raise ValueError("checkpoint fields malformed (seq, at, hash, key_id, site or purpose)")
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
        return {}, ("the cryptography package is not installed, so checkpoint signatures "
                    "cannot be checked")
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


class Checkpoint:
    """One distinct signed checkpoint, wherever it appeared (export lines, file lines)."""

    def __init__(self, payload: dict, signature: str):
        self.payload, self.signature = payload, signature
        self.seq, self.at, self.hash = payload["seq"], payload["at"], payload["hash"]
        self.site = payload.get("site")  # None: legacy, written before sites existed
        self.purpose = payload.get("purpose")  # None: written before purposes existed
        self.identity = (self.seq, self.hash, payload["key_id"], self.site, self.purpose)
        self.sources: list[str] = []
        self.in_export = self.in_files = False

    def where(self) -> str:
        shown = ", ".join(self.sources[:2]) + (", ..." if len(self.sources) > 2 else "")
        return f"checkpoint at seq {self.seq} ({shown}, signed {self.at})"


class CheckpointBook:
    """Every checkpoint line read, from the export and from the checkpoint files."""

    def __init__(self):
        self.distinct: dict[tuple[bytes, str], Checkpoint] = {}
        self.malformed: list[str] = []

    def add(self, line: bytes, source: str, *, in_export: bool) -> Checkpoint | None:
        try:
            payload, signature = parse_checkpoint(line)
        except ValueError as exc:
            self.malformed.append(f"{source}: {exc}")
            return None
        checkpoint = self.distinct.setdefault((canonical_json(payload), signature),
                                              Checkpoint(payload, signature))
        checkpoint.sources.append(source)
        if in_export:
            checkpoint.in_export = True
        else:
            checkpoint.in_files = True
        return checkpoint

    def in_seq_order(self) -> list[Checkpoint]:
        return sorted(self.distinct.values(), key=lambda cp: (cp.seq, cp.at))


def read_checkpoint_files(paths: list[str], book: CheckpointBook) -> None:
    """Add the lines of the external checkpoint files (empty lines are skipped)."""
    for path in paths:
        try:
            for number, line in read_lines(path):
                if line:
                    book.add(line, f"{path} line {number}", in_export=False)
        except OSError as exc:
            raise UsageError(f"cannot read checkpoint file {path}: {exc}") from None


class ExportCheck:
    """One pass over the export lines, in order. An event problem stops the walk (later
    event lines are skipped, checkpoint lines are still collected)."""

    def __init__(self, wanted: set[int], book: CheckpointBook):
        self.wanted, self.book = wanted, book
        self.header = None
        self.last_seq, self.last_hash = 0, GENESIS_HASH
        self.hashes: dict[int, str] = {}
        self.bad: tuple[int, str] | None = None  # where and why the walk stopped
        self.in_checkpoints = False
        self.first_at: str | None = None
        self.checkpoint_events: dict[int, bytes] = {}  # seq -> line of each such event
        self.last_checkpoint: Checkpoint | None = None  # of the last checkpoint line
        self.handovers: list[tuple[int, dict]] = []  # (seq, event): rotations, site changes

    def line(self, number: int, line: bytes) -> None:
        if number == 1:
            self.header = check_header(line)
        elif line.startswith(CHECKPOINT_PREFIX):
            self.in_checkpoints = True
            self.last_checkpoint = self.book.add(line, f"export line {number}", in_export=True)
        elif self.bad is not None:
            return
        elif self.in_checkpoints:
            self.bad = (self.last_seq + 1, f"line {number}: an event after the checkpoints")
        else:
            seq = self.last_seq + 1
            try:
                self.last_hash = check_event(line, seq, self.last_hash)
            except Broken as exc:
                self.bad = (exc.seq, exc.why)
                return
            self.last_seq = seq
            if seq in self.wanted:
                self.hashes[seq] = self.last_hash
            if line.startswith(CHECKPOINT_EVENT_PREFIX):
                self.checkpoint_events[seq] = line
            elif line.startswith(HANDOVER_PREFIXES):
                self.handovers.append((seq, json.loads(line)))
            if seq == 1:
                self.check_exported_after(json.loads(line)["at"])

    def check_exported_after(self, first_at: str) -> None:
        """An export cannot have been made before its first event: a back-dated header
        (to pass off file checkpoints beyond a cut as "signed later") is refused."""
        if self.header["exported_at"] < first_at:
            self.bad = (1, f"the header's exported_at {self.header['exported_at']} is before "
                           f"the first event ({first_at}): the header was back-dated")

    def head_problem(self) -> tuple[int, str] | None:
        head = self.header["head"]
        if (head["seq"], head["hash"]) != (self.last_seq, self.last_hash):
            return (min(head["seq"], self.last_seq) + 1,
                    f"the header names head seq {head['seq']} hash {head['hash']} but "
                    f"the events end at seq {self.last_seq} hash {self.last_hash}")
        return None


class Outcome:
    """What the verification found; ``problems`` sorted by seq, lowest (first bad) first."""

    def __init__(self, check: ExportCheck, problems: list[tuple[int, str]],
                 matched: list[Checkpoint], later: list[Checkpoint],
                 closing: Checkpoint | None, unclosed: str = ""):
        self.events, self.head_hash = check.last_seq, check.last_hash
        self.exported_at = check.header["exported_at"]
        self.format = check.header["format"]
        self.unclosed = unclosed  # why no closing checkpoint anchors the export, if known
        self.problems = sorted(problems, key=lambda problem: problem[0])
        self.matched = matched  # checkpoints naming the chain's hash at their seq
        self.later = later      # file checkpoints beyond the head, signed after the export
        self.closing = closing  # the export's signed checkpoint over its last event


def check_header(line: bytes) -> dict:
    try:
        header = parse_canonical(line)
        ok = (isinstance(header, dict) and header.get("format") in EXPORT_FORMATS
              and set(header) == EXPORT_FORMATS[header["format"]]
              and isinstance(header.get("site", ""), str)
              and isinstance(header.get("exported_at"), str)
              and TIMESTAMP.fullmatch(header["exported_at"])
              and isinstance(header.get("head"), dict)
              and set(header["head"]) == {"hash", "seq"}
              and type(header["head"]["seq"]) is int and isinstance(header["head"]["hash"], str))
    except ValueError:
        ok = False
    if not ok:
        raise Broken(1, f"line 1 is not a {' or '.join(EXPORT_FORMATS)} header")
    return header


def span(first: int, last: int) -> str:
    return f"event {first}" if first == last else f"events {first}..{last}"


def read_lines(path: str):
    """(number, bytes) of each line without its end ("\\n", or "\\r\\n" after a copy)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\n").removesuffix(b"\r")


def checkpoint_seqs(path: str) -> set[int]:
    """First pass: the seqs whose hashes the export's checkpoint lines will ask for."""
    wanted = set()
    for _number, line in read_lines(path):
        if line.startswith(CHECKPOINT_PREFIX):
            try:
                wanted.add(parse_checkpoint(line)[0]["seq"])
            except ValueError:
                continue  # a malformed line is reported by the second pass
    return wanted


def verify(path: str, keys: dict, checkpoint_files: list[str] | tuple = (),
           site: str | None = None, root: str | None = None) -> Outcome:
    """Verify the export at ``path`` with the checkpoints of the export and of
    ``checkpoint_files``; ``site`` is the expected site id (default: the header's).
    ``root`` is the id of the trusted first key (default: the first of ``keys``, which
    keeps its insertion order): the chain's first checkpoint must be signed with it.
    Raises Broken when the header is unusable, UsageError when a checkpoint file cannot be
    read, OSError when the export cannot be read."""
    book = CheckpointBook()
    read_checkpoint_files(list(checkpoint_files), book)
    wanted = checkpoint_seqs(path) | {cp.seq for cp in book.distinct.values()}
    check = ExportCheck(wanted, book)
    for number, line in read_lines(path):
        check.line(number, line)
    if check.header is None:
        raise Broken(1, "the file is empty")
    return evaluate(check, book, keys, site if site is not None else check.header.get("site"),
                    root)


def evaluate(check: ExportCheck, book: CheckpointBook, keys: dict,
             site: str | None = None, root: str | None = None) -> Outcome:
    """Set the checkpoints against the chain. A checkpoint that is forged, of another site
    or disagrees with the chain is placed at the seq after the last checkpoint below it
    that matched."""
    problems: list[tuple[int, str]] = []
    pending: list[tuple[float, str]] = [(INFINITY, why) for why in book.malformed]
    bad_seq = check.bad[0] if check.bad else INFINITY
    head_problem = None if check.bad else check.head_problem()
    problems += [problem for problem in (check.bad, head_problem) if problem]
    rotations, site_changes, handover_problems = handovers(check)
    problems += handover_problems + site_change_problems(site_changes, site)

    def site_of(seq: int) -> str | None:
        return site_at(site_changes, seq, site)
    closing, unclosed = closing_checkpoint(check, book, keys, site_of)
    # "signed later than the export": by the closing checkpoint's signed time when there is
    # one; the header's own exported_at is not signed
    exported_at = closing.at if closing else check.header["exported_at"]
    if closing and closing.at != check.header["exported_at"]:
        problems.append((check.last_seq + 1, (
            f"the header's exported_at {check.header['exported_at']} is not the closing "
            f"checkpoint's signed time {closing.at}")))
    problems += header_problems(check, book, closing)
    matched, later = [], []
    for cp in book.in_seq_order():
        why = (signature_problem(cp, keys) if keys else "") or site_problem(cp, site_of(cp.seq))
        if why:
            pending.append((cp.seq, f"{cp.where()}: {why}"))
        elif cp.seq > check.last_seq:
            if check.bad:
                continue  # the walk stopped early; its problem comes first
            if not cp.in_export and cp.at > exported_at:
                later.append(cp)  # the export is older than this checkpoint
            else:
                problems.append((check.last_seq + 1, (
                    f"{cp.where()} lies beyond the last event {check.last_seq}: "
                    f"{span(check.last_seq + 1, cp.seq)} removed")))
        elif cp.seq >= bad_seq:
            continue
        elif check.hashes.get(cp.seq) == cp.hash:
            matched.append(cp)
        else:
            pending.append((cp.seq, (
                f"{cp.where()} says hash {cp.hash} but event {cp.seq} has hash "
                f"{check.hashes.get(cp.seq)}: the chain was rewritten")))
    problems += checkpoint_event_problems(check, book)
    refused = unintroduced_keys(matched, rotations, root or next(iter(keys), None)
                                ) if keys else {}
    pending += [(cp.seq, f"{cp.where()}: {why}") for cp, why in refused.items()]
    matched = [cp for cp in matched if cp not in refused]
    for at_seq, why in pending:
        below = [cp.seq for cp in matched if cp.seq < at_seq]
        problems.append(((max(below) if below else 0) + 1, why))
    return Outcome(check, problems, matched, later, closing, unclosed)


def closing_checkpoint(check: ExportCheck, book: CheckpointBook, keys: dict,
                       site_of) -> tuple[Checkpoint | None, str]:
    """(the export's closing checkpoint, "") when it verifies: signed under a given key, of
    the site, naming the last event's hash, and signed to close an export (purpose
    "export"; from format /3 on also the last line; before /3 an unmarked one counts).
    Else (None, why not, or "" when there is no checkpoint at the last event at all)."""
    if check.bad or check.last_seq == 0 or not keys:
        return None, ""
    at_end = [cp for cp in book.in_seq_order()
              if cp.in_export and cp.seq == check.last_seq and cp.hash == check.last_hash
              and not signature_problem(cp, keys) and not site_problem(cp, site_of(cp.seq))]
    marked = check.header["format"] == MARKED_FORMAT

    def closes(cp: Checkpoint) -> bool:
        if cp.purpose == "export":
            return cp is check.last_checkpoint or not marked
        return cp.purpose is None and not marked  # routine never closes an export
    closing = [cp for cp in at_end if closes(cp)]
    if closing:
        return max(closing, key=lambda cp: cp.at), ""
    if any(cp.purpose == "export" for cp in at_end):
        return None, ("the export's closing checkpoint is not its last line: the lines "
                      "after it were added")
    if at_end:
        return None, (
            f"the checkpoint at the last event (seq {check.last_seq}, signed "
            f"{at_end[-1].at}) was not signed to close an export (purpose "
            f"{at_end[-1].purpose or 'unmarked'}, not export): this may be an export cut at "
            "an earlier checkpoint, which proves nothing about the events after it")
    return None, ""


def header_problems(check: ExportCheck, book: CheckpointBook, closing: Checkpoint | None
                    ) -> list[tuple[int, str]]:
    """The header against what is signed: a checkpoint of the export naming a site (in a
    /1 export) or a purpose (in a /1 or /2 export) was written after its format was
    replaced, so the header was relabelled to an older format (which would switch off the
    site or closing checks); and the header's site is the closing checkpoint's."""
    header, problems = check.header, []
    older = {"qms-audit-export/1": ("site", "purpose"), "qms-audit-export/2": ("purpose",)}
    for cp in book.in_seq_order():
        late = [name for name in older.get(header["format"], ()) if name in cp.payload]
        if cp.in_export and late:
            problems.append((1, f"{cp.where()} names {' and '.join(late)}, which "
                                f"{header['format']} exports predate: the header was "
                                "relabelled to an older format"))
    if closing and closing.site and header.get("site", closing.site) != closing.site:
        problems.append((check.last_seq + 1, (
            f"the header's site {header['site']!r} is not the closing checkpoint's signed "
            f"site {closing.site!r}")))
    return problems


def site_problem(cp: Checkpoint, site: str | None) -> str:
    """Why ``cp`` may not speak for ``site``, the site in effect at its seq ("" if it may;
    a checkpoint without a site, written before sites existed, may for any)."""
    if site is None or cp.site is None or cp.site == site:
        return ""
    return (f"signed for site {cp.site!r}, not for this export's site {site!r} (at seq "
            f"{cp.seq}, as the export's audit.site.changed events have it)")


def handovers(check: ExportCheck) -> tuple[list, list, list[tuple[int, str]]]:
    """(key rotations, site changes, problems) from the export's audit.key.rotated and
    audit.site.changed events; each handover is (seq, old, new)."""
    rotations, site_changes, problems = [], [], []
    for seq, event in check.handovers:
        old_name, new_name = HANDOVER_FIELDS[event["action"]]
        # a missing old_key_id or old_site is malformed, as in audit.succession
        old, new = event["data"].get(old_name, MISSING), event["data"].get(new_name)
        rotation = event["action"] == "audit.key.rotated"
        if not isinstance(new, str) or not (isinstance(old, str)
                                            or old is None and not rotation):
            problems.append((seq, f"event {seq} ({event['action']}) does not name "
                                  f"{old_name} and {new_name}"))
        else:
            (rotations if rotation else site_changes).append((seq, old, new))
    return rotations, site_changes, problems


def site_at(changes: list, seq: int, site: str | None) -> str | None:
    """The site a checkpoint at ``seq`` names: the new site of the last change at or
    before it, else the first change's old site, else ``site`` (None: any)."""
    before = [new for change_seq, _old, new in changes if change_seq <= seq]
    if before:
        return before[-1]
    return changes[0][1] if changes else site


def site_change_problems(changes: list, site: str | None) -> list[tuple[int, str]]:
    """Each site change starts where the one before ended, and the last one ends at the
    export's site."""
    problems = [(seq, f"event {seq} (audit.site.changed) changes the site from {old!r}, but "
                      f"event {before[0]} had changed it to {before[2]!r}")
                for before, (seq, old, _new) in zip(changes, changes[1:]) if old != before[2]]
    if changes and site is not None and changes[-1][2] != site:
        seq, _old, new = changes[-1]
        problems.append((seq, f"event {seq} (audit.site.changed) changed the site to "
                              f"{new!r}, but this export's site is {site!r}"))
    return problems


def unintroduced_keys(matched: list[Checkpoint], rotations: list, root: str | None) -> dict:
    """{checkpoint: why} for the checkpoints whose key the chain did not let sign at their
    seq. ``root`` (the trusted first key; None: the first checkpoint's) signs from the
    start; another key from the first checkpoint, signed with the key before it (itself
    allowed), at or after the audit.key.rotated event that names both: there the old key
    hands over. The old key is retired once the new key's first checkpoint exists: its
    checkpoints at higher seqs are refused, a handover of its own there too."""
    ordered = sorted(matched, key=lambda cp: cp.seq)
    if not ordered:
        return {}
    root = root or ordered[0].payload["key_id"]
    allowed, introduced_at, retired_after = {root: 0}, {}, {}
    for seq, old, new in rotations:
        if old not in allowed or new in allowed:
            continue
        # the old key hands over with a checkpoint it may still sign: not once retired
        handover = next((cp.seq for cp in ordered if cp.payload["key_id"] == old
                         and max(seq, allowed[old]) <= cp.seq
                         <= retired_after.get(old, float("inf"))), None)
        if handover is not None:
            allowed[new], introduced_at[new] = handover, seq
            first = next((cp.seq for cp in ordered
                          if cp.payload["key_id"] == new and cp.seq >= handover), None)
            if first is not None:  # a retirement only ever moves earlier
                retired_after[old] = min(first, retired_after.get(old, first))
    refused = {}
    for cp in ordered:
        kid = cp.payload["key_id"]
        if kid not in allowed:
            refused[cp] = (f"signed with key {kid}, which no audit.key.rotated event "
                           "introduces under a checkpoint of the key before it (the trusted "
                           f"first key is {root}): a key swapped in, not rotated")
        elif cp.seq < allowed[kid]:
            refused[cp] = (f"signed with key {kid} before the key before it handed over at "
                           f"seq {allowed[kid]} (rotation event {introduced_at[kid]})")
        elif kid in retired_after and cp.seq > retired_after[kid]:
            refused[cp] = (f"signed with key {kid}, retired once its successor signed its "
                           f"first checkpoint at seq {retired_after[kid]}: a retired key "
                           "signs nothing")
    return refused


def checkpoint_event_problems(check: ExportCheck, book: CheckpointBook
                              ) -> list[tuple[int, str]]:
    """The checkpoints' own events against the export's checkpoint lines (the database's
    rows): each audit.checkpoint.signed event records one of them, at the seq before it,
    and each of them below the last event is followed by its event. A line only in a
    checkpoint file needs no event: it may be of a checkpoint whose transaction rolled
    back, which is still true."""
    exported = [cp for cp in book.in_seq_order() if cp.in_export]
    known = {cp.identity for cp in exported}
    problems, recorded = [], {}
    for seq, line in check.checkpoint_events.items():
        data = json.loads(line)["data"]
        if set(data) not in CHECKPOINT_EVENT_DATA or data["seq"] != seq - 1:
            problems.append((seq, f"event {seq} (audit.checkpoint.signed) does not record a "
                                  f"checkpoint at seq {seq - 1}"))
            continue
        identity = (data["seq"], data["hash"], data["key_id"], data.get("site"),
                    data.get("purpose"))
        recorded[seq - 1] = identity
        if identity not in known:
            problems.append((seq, (
                f"event {seq} records a checkpoint at seq {seq - 1} (hash {data['hash']}, key "
                f"{data['key_id']}) that is not among the export's checkpoints: the "
                "checkpoint was removed")))
    for cp in exported:
        if cp.seq < check.last_seq and recorded.get(cp.seq) != cp.identity:
            problems.append((cp.seq + 1, (
                f"{cp.where()} is not followed by its audit.checkpoint.signed event: event "
                f"{cp.seq + 1} does not record it")))
    return problems


def signature_problem(cp: Checkpoint, keys: dict) -> str:
    key = keys.get(cp.payload["key_id"])
    if key is None:
        return f"signed with unknown key {cp.payload['key_id']}"
    from cryptography.exceptions import InvalidSignature
    try:
        key.verify(base64.b64decode(cp.signature, validate=True), canonical_json(cp.payload))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"the signature does not verify under key {cp.payload['key_id']}"
    return ""


def seq_list(checkpoints: list[Checkpoint], limit: int = 20) -> str:
    seqs = [str(cp.seq) for cp in checkpoints]
    return ", ".join(seqs[:limit]) + (f", ... ({len(seqs)} in all)" if len(seqs) > limit else "")


def report(outcome: Outcome, *, unchecked: str, files: list[str],
           allow_unanchored: bool) -> int:
    """Print the verdict and the details; return the exit status."""
    if outcome.problems:
        seq, why = outcome.problems[0]
        print(f"BROKEN at seq {seq}: {why}")
        for seq, why in outcome.problems[1:1 + MORE_LINES]:
            print(f"also at seq {seq}: {why}")
        if len(outcome.problems) > 1 + MORE_LINES:
            print(f"... and {len(outcome.problems) - 1 - MORE_LINES} more problem(s)")
        return 1
    summary = f"{outcome.events} events, head seq {outcome.events} hash {outcome.head_hash}"
    if not unchecked and outcome.closing:
        print_intact(outcome, summary, files)
        return 0
    print(UNANCHORED)
    print(summary)
    print_later(outcome)
    if unchecked:
        print(f"why: {unchecked}")
        if outcome.matched:
            print(f"{len(outcome.matched)} checkpoint(s) match the chain but their signatures "
                  "were NOT checked: anyone can write such a line")
        if allow_unanchored:
            print("WARNING: accepted without checking signatures because of "
                  "--allow-unanchored")
            return 0
        return 1
    if outcome.unclosed:
        print(f"why: {outcome.unclosed}")
        return 1
    last = outcome.matched[-1].seq if outcome.matched else 0
    print(f"why: the last event (seq {outcome.events}) is under no signed checkpoint of the "
          "export; an export ends with a checkpoint signed over its last event, so "
          f"{span(last + 1, outcome.events)} could have been rewritten"
          + (f" after the last anchor at seq {last}" if last else ""))
    return 1


def print_intact(outcome: Outcome, summary: str, files: list[str]) -> None:
    anchors = outcome.matched
    in_files = sum(cp.in_files for cp in anchors)
    print(f"INTACT: {summary}")
    print(f"{len(anchors)} checkpoint(s) match the chain, signatures valid"
          + (f" ({in_files} of them in the checkpoint file(s))" if files else "")
          + f"; the export's closing checkpoint at seq {outcome.closing.seq}, signed "
            f"{outcome.closing.at}" + (f", site {outcome.closing.site}"
                                        if outcome.closing.site else ""))
    if outcome.closing.purpose is None:
        print(f"NOTE: {outcome.format}: the closing checkpoint is not marked as one (the "
              f"format before qms-audit-export/3), so this proves events 1..{outcome.events} "
              "authentic, but not that they were the whole trail at "
              f"{outcome.exported_at}: an export cut at an earlier checkpoint looks the same")
    exported_only = [cp for cp in anchors if not cp.in_files and cp is not outcome.closing]
    if files and exported_only:
        print(f"WARNING: {len(exported_only)} checkpoint(s) of the export are not in the "
              "checkpoint file(s), so not anchored externally: seq "
              f"{seq_list(exported_only)}")
    if not files:
        print("NOTE: no --checkpoints file given: the anchors are the export's own "
              "checkpoints, copied from the database; give the instance's "
              "audit-checkpoints.jsonl too, so that removed checkpoints (with a "
              "truncated or rewritten chain) are detected")
    print_later(outcome)


def print_later(outcome: Outcome) -> None:
    if outcome.later:
        newest = outcome.later[-1]
        print(f"NOTE: the checkpoint file(s) hold {len(outcome.later)} checkpoint(s) signed "
              f"after this export was made ({outcome.exported_at}), the newest at seq "
              f"{newest.seq} signed {newest.at}: the export is older than them and says "
              f"nothing about events after seq {outcome.events}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_export", description="Verify a QMS audit trail export (JSON lines).")
    parser.add_argument("export", help="the exported .jsonl file")
    parser.add_argument("--public-key", action="append", default=[], metavar="KEY",
                        help="the server's public key: PEM, or the JSON document of "
                             "/api/v1/audit/public-key; repeat for retired keys, the "
                             "instance's first key first (it is the trust root unless "
                             "--trusted-key names one)")
    parser.add_argument("--trusted-key", default=None, metavar="KEY",
                        help="the trust root: the public key that signed the instance's "
                             "first checkpoint, from the IQ record (default: the first "
                             "--public-key); the chain's first checkpoint must be signed "
                             "with it")
    parser.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                        help="the instance's external checkpoint file "
                             "(audit-checkpoints.jsonl); repeatable")
    parser.add_argument("--site", default=None,
                        help="the site id the checkpoints must name (default: the export "
                             "header's); a checkpoint of another site is refused")
    parser.add_argument("--allow-unanchored", action="store_true",
                        help="without --public-key (or the cryptography package): exit 0 "
                             "when the chain is consistent (the output still says "
                             "UNANCHORED). Never accepts an export whose tail no signed "
                             "checkpoint covers")
    args = parser.parse_args(argv)
    try:
        keys, unchecked = load_public_keys(([args.trusted_key] if args.trusted_key else [])
                                           + args.public_key)
        outcome = verify(args.export, keys, args.checkpoints, args.site)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    except Broken as exc:
        print(f"BROKEN at seq {exc.seq}: {exc.why}")
        return 1
    return report(outcome, unchecked=unchecked, files=args.checkpoints,
                  allow_unanchored=args.allow_unanchored)


if __name__ == "__main__":
    sys.exit(main())
