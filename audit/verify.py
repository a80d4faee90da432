"""Verification of the audit chain and its checkpoints inside the database.

Checks, in seq order: seq continuity from 1, ``prev_hash`` equals the previous hash (64
zeros for seq 1), the stored hash is sha256 of the stored canonical bytes, and the queryable
columns agree with the canonical JSON (audit.scan does this part, fast). Then every
checkpoint (database rows and the external file): a valid signature under a known key that
the chain let sign at its seq, the site the chain had then (audit.succession), and the event
at its seq exists with its hash.

``first_bad_seq`` is the lowest seq the verifier cannot vouch for: the first event failing a
chain check, the first missing event when a checkpoint or the head lies beyond the end, and
for a checkpoint that is forged or disagrees with the chain, the seq after the last
checkpoint that did verify (the rewrite happened somewhere after it).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from audit.checkpoints import (Checkpoint, CheckpointFileError, key_id, list_checkpoints,
                               read_checkpoint_file, signature_problem)
from audit.checkpoint_events import checkpoint_event_problems
from audit.scan import Walk, column_check_in_background, explain_columns, walk_events
from audit.schema import GENESIS_HASH
from audit.succession import (SITE_CHANGE_ACTION, Succession, read_succession,
                               unintroduced_keys)
from audit.trail import connection_of, head

_INFINITY = float("inf")


INTACT, BROKEN, UNANCHORED = "INTACT", "BROKEN", "UNANCHORED"


@dataclass(frozen=True)
class VerifyResult:
    """``verdict`` is INTACT (no problem and at least one checkpoint verified and matched
    the chain), BROKEN (a problem, the first at ``first_bad_seq``) or UNANCHORED (no
    problem, but no checkpoint vouches for the chain: a consistent rewrite of it would look
    the same). ``ok`` is true for INTACT only."""
    ok: bool
    events_checked: int
    head_seq: int          # last event that passed the chain checks
    head_hash: str
    first_bad_seq: int | None
    problem: str | None    # what is wrong at first_bad_seq, for humans
    checkpoints_checked: int  # signature valid and matching the chain
    problems: tuple[str, ...] = ()  # every problem found, lowest seq first
    verdict: str = INTACT
    anchored_seq: int = 0  # seq of the last checkpoint that vouched for the chain
    unanchored_events: int = 0  # events after it: hash-linked, not yet under a checkpoint
    form_checked: tuple[int, str] = (0, GENESIS_HASH)  # (seq, hash): 1..seq are canonical
    root_key_id: str | None = None  # the key taken as the trusted first key
    root_pinned: bool = False  # True: the caller named it; False: the first checkpoint's


def verify_chain(connection: Session | Connection, *,
                 public_keys: Mapping[str, Ed25519PublicKey] | None = None,
                 checkpoint_file: Path | None = None, site: str | None = None,
                 form_known: tuple[int, str] | None = None,
                 trusted_key_id: str | None = None,
                 progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Verify the whole chain and every checkpoint; read-only, streams the events.

    ``public_keys`` maps key ids to the server's public keys (current and retired); a
    checkpoint under any other key is a problem. ``checkpoint_file`` must hold every
    checkpoint ever written; a database checkpoint missing from it is a problem.
    ``site`` is this instance's site id: a checkpoint naming another site than the chain's
    ``audit.site.changed`` events say it had at the checkpoint's seq is a problem (legacy
    checkpoints without a site are accepted); so is a checkpoint whose key no
    ``audit.key.rotated`` event introduced (audit.succession). ``trusted_key_id`` is the
    trust root, the key that signed the chain's first checkpoint as recorded at ``qms init``
    (outside the database): a first checkpoint under another key is a problem. Without it
    the first checkpoint's key is taken, and the result says so (``root_key_id``,
    ``root_pinned`` False): then a chain rewritten from seq 1 under any given key verifies,
    so compare ``root_key_id`` with the IQ record. ``progress(events_checked)`` is
    called after each chunk of events. ``form_known`` is a previous result's
    ``form_checked`` (seq, hash): the canonical form of events up to it is not parsed again
    when the chain still has that hash at that seq (else the walk is repeated in full), so
    a repeated verification costs hashing only; the verdict is the same either way.
    Head and checkpoints are read before the events: anything they mention was committed
    before the walk began, so concurrent appends cannot cause false alarms. The column
    comparison runs on a second connection of the same engine (see audit.scan) and so
    sees committed events only.
    """
    public_keys = dict(public_keys or {})
    _check_key_ids(public_keys)
    connection = connection_of(connection)
    stored_head = head(connection)
    pending: list[tuple[float, str]] = []  # (checkpoint seq, why): placed after the walk
    rows = list_checkpoints(connection)
    checkpoints = rows + _file_checkpoints(checkpoint_file, rows, pending)
    succession = read_succession(connection)
    signed = _signed_checkpoints(checkpoints, public_keys, succession, site, pending)
    wanted = {cp.seq for cp in signed} | {stored_head.seq} | set(succession.texts)
    walk = Walk(wanted | {form_known[0]} if form_known else wanted,
                form_known=form_known or (0, GENESIS_HASH))
    problems = _chain_problems(connection, walk, progress)
    if not walk.form_known_held():  # other bytes than those checked before: check all
        walk = Walk(wanted)
        problems = _chain_problems(connection, walk, progress)
    problems += _head_problems(stored_head.seq, stored_head.hash, walk)
    problems += _events_above_head(connection, walk)
    _match_checkpoints(signed, walk, problems, pending)
    problems += checkpoint_event_problems(rows, walk, through_seq=stored_head.seq)
    problems += succession.problems(walk.found, walk.last_seq, site)
    vouched = _introduced_only(signed, walk, succession, pending, trusted_key_id)
    problems += [(_after_last_vouched(vouched, at_seq), why) for at_seq, why in pending]
    return replace(_result(walk, problems, vouched),
                   root_key_id=trusted_key_id or _first_key(signed, walk),
                   root_pinned=trusted_key_id is not None)


def _chain_problems(connection: Connection, walk: Walk,
                    progress: Callable[[int], None] | None) -> list[tuple[int, str]]:
    """Walk the chain while the database checks the columns (see audit.scan)."""
    column_result = column_check_in_background(connection)
    walk_events(connection, walk, progress)
    problems = [walk.bad] if walk.bad else []
    disagreeing = column_result()
    if disagreeing is not None:
        problems.append(explain_columns(connection, disagreeing))
    return problems


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
                        public_keys: Mapping[str, Ed25519PublicKey], succession: Succession,
                        site: str | None, pending: list[tuple[float, str]]
                        ) -> list[Checkpoint]:
    """The checkpoints whose signature verifies under a known key and that name the site
    the chain had at their seq; the rest go to pending."""
    valid = []
    for cp in checkpoints:
        why = (signature_problem(cp, public_keys)
               or _site_problem(cp, succession.site_at(cp.seq, site)))
        if why:
            pending.append((cp.seq, f"checkpoint at seq {cp.seq} ({cp.source}): {why}"))
        else:
            valid.append(cp)
    return valid


def _site_problem(cp: Checkpoint, site: str | None) -> str:
    if site is None or cp.site is None or cp.site == site:
        return ""
    return (f"signed for site {cp.site!r}, not for this instance's site {site!r} (at seq "
            f"{cp.seq}, as the chain's {SITE_CHANGE_ACTION} events have it)")


def _events_above_head(connection: Connection, walk: Walk) -> list[tuple[int, str]]:
    """Events beyond the head row: the head lags the chain. The head is read again after
    the walk, so an append committed meanwhile (event and head move together) is no alarm."""
    now = head(connection)
    if walk.last_seq <= now.seq:
        return []
    return [(now.seq + 1, f"the head row says seq {now.seq} but the chain goes on to seq "
                          f"{walk.last_seq}: {_span(now.seq + 1, walk.last_seq)} lie above "
                          "the head (the head row was wound back, or events were inserted)")]


def _head_problems(head_seq: int, head_hash: str, walk: Walk) -> list[tuple[int, str]]:
    if walk.bad and walk.bad[0] <= head_seq:
        return []  # the walk stopped before the head; the chain problem says enough
    last_seq = walk.last_seq
    if head_seq > last_seq:
        return [(last_seq + 1, f"the head row says seq {head_seq} but the chain ends at seq "
                               f"{last_seq}: {_span(last_seq + 1, head_seq)} missing")]
    expected = GENESIS_HASH if head_seq == 0 else walk.found.get(head_seq)
    if head_hash != expected:
        return [(max(head_seq, 1), f"the head row's hash {head_hash} differs from "
                                   f"event {head_seq}'s hash {expected}")]
    return []


def _match_checkpoints(signed: list[Checkpoint], walk: Walk, problems: list,
                       pending: list[tuple[float, str]]) -> list[int]:
    """Seqs of the signed checkpoints that match the chain; mismatches go to pending."""
    last_seq = walk.last_seq
    vouched = []
    for cp in signed:
        if cp.seq > last_seq:
            if walk.bad is None:  # else the walk stopped early, and that is the problem
                problems.append((last_seq + 1, (
                    f"checkpoint at seq {cp.seq} ({cp.source}, signed {cp.at}) lies beyond "
                    f"the chain's end at seq {last_seq}: {_span(last_seq + 1, cp.seq)} "
                    "removed")))
        elif walk.found.get(cp.seq) == cp.hash:
            vouched.append(cp.seq)  # once per checkpoint: database row and file line
        else:
            pending.append((cp.seq, (
                f"checkpoint at seq {cp.seq} ({cp.source}, signed {cp.at}) says hash "
                f"{cp.hash} but event {cp.seq} has hash {walk.found.get(cp.seq)}: "
                f"the chain was rewritten")))
    return sorted(vouched)


def _introduced_only(signed: list[Checkpoint], walk: Walk, succession: Succession,
                     pending: list[tuple[float, str]], root: str | None) -> list[int]:
    """Seqs of the signed checkpoints that match the chain and whose key the chain had
    introduced by their seq; the others go to pending (audit.succession)."""
    matched = [cp for cp in signed if walk.found.get(cp.seq) == cp.hash]
    refused = unintroduced_keys(matched, succession.rotations, root)
    pending += [(cp.seq, f"checkpoint at seq {cp.seq} ({cp.source}): {why}")
                for cp, why in refused.items()]
    return sorted(cp.seq for cp in matched if cp not in refused)


def _first_key(signed: list[Checkpoint], walk: Walk) -> str | None:
    """The key of the lowest checkpoint matching the chain: the root when none is pinned."""
    matched = [cp for cp in signed if walk.found.get(cp.seq) == cp.hash]
    return min(matched, key=lambda cp: cp.seq).key_id if matched else None


def _span(first: int, last: int) -> str:
    """"event 7" or "events 7..9"."""
    return f"event {first}" if first == last else f"events {first}..{last}"


def _after_last_vouched(vouched: list[int], at_seq: float) -> int:
    """The seq after the last verified checkpoint below ``at_seq`` (1 when there is none)."""
    below = [seq for seq in vouched if seq < at_seq]
    return (below[-1] if below else 0) + 1


def _result(walk: Walk, problems: list[tuple[int, str]], vouched: list[int]
            ) -> VerifyResult:
    problems.sort(key=lambda problem: problem[0])  # stable: equal seqs keep their order
    first = problems[0] if problems else (None, None)
    anchored_seq = vouched[-1] if vouched else 0
    verdict = BROKEN if problems else INTACT if vouched else UNANCHORED
    return VerifyResult(ok=verdict == INTACT, events_checked=walk.last_seq,
                        head_seq=walk.last_seq, head_hash=walk.last_hash,
                        first_bad_seq=first[0], problem=first[1],
                        checkpoints_checked=len(vouched),
                        problems=tuple(why for _seq, why in problems), verdict=verdict,
                        anchored_seq=anchored_seq,
                        unanchored_events=walk.last_seq - anchored_seq,
                        form_checked=(walk.last_seq, walk.last_hash))
