"""The third witness of a checkpoint: its ``audit.checkpoint.signed`` event in the chain.

write_checkpoint stores each checkpoint as a database row, as a line of the external file,
and as the event right after the seq it signs, all in one transaction. The verifier
cross-checks the three: every checkpoint event records a checkpoint row, at the seq just before it;
every row below the chain's end is followed by its event; every row is in the file. Removing a checkpoint's row and file line, or inventing a checkpoint that the
chain never recorded, is then visible too.
"""
from __future__ import annotations

import json

from audit.checkpoints import Checkpoint
from audit.scan import Walk

# (legacy: without site, without purpose)
_DATA_KEYS = ({"hash", "key_id", "purpose", "seq", "site"}, {"hash", "key_id", "seq", "site"},
              {"hash", "key_id", "seq"})


def checkpoint_event_problems(rows: list[Checkpoint], walk: Walk, through_seq: int
                              ) -> list[tuple[int, str]]:
    """(seq, why) for each disagreement between checkpoint events and checkpoint rows.

    Only events up to ``through_seq``, the head read before the rows, are held against the
    rows: a checkpoint committed while the verification runs has its event in the walk but
    may not have its row in ``rows``, and must not look removed.

    Only events the walk vouched for are considered; a row beyond the last walked seq is
    the tail check's to report, but a row at it lacks its event (written in the row's own
    transaction), so the tail was cut right after it. The file is
    tied in through the rows (each row must be in it, audit.verify); a line only in the
    file needs no event: its transaction may have rolled back, and it is still true.
    """
    known = {_identity(cp) for cp in rows}
    problems, recorded = [], {}
    for seq, text in walk.checkpoint_events.items():
        if seq > through_seq:
            continue
        data = json.loads(text)["data"]
        if set(data) not in _DATA_KEYS or data["seq"] != seq - 1:
            problems.append((seq, f"event {seq} (audit.checkpoint.signed) does not record a "
                                  f"checkpoint at seq {seq - 1}"))
            continue
        identity = (data["seq"], data["hash"], data["key_id"], data.get("site"),
                    data.get("purpose"))
        recorded[seq - 1] = identity
        if identity not in known:
            problems.append((seq, (
                f"event {seq} records a checkpoint at seq {seq - 1} (hash {data['hash']}, key "
                f"{data['key_id']}) that is in no checkpoint row: the checkpoint was "
                "removed")))
    problems += _unrecorded(rows, recorded, walk.last_seq)
    return problems


def _unrecorded(checkpoints: list[Checkpoint], recorded: dict, last_seq: int
                ) -> list[tuple[int, str]]:
    problems, reported = [], set()
    for cp in checkpoints:
        identity = _identity(cp)
        if cp.seq > last_seq or recorded.get(cp.seq) == identity or identity in reported:
            continue
        reported.add(identity)
        problems.append((cp.seq + 1, (
            f"checkpoint at seq {cp.seq} ({cp.source}) is not followed by its "
            f"audit.checkpoint.signed event: event {cp.seq + 1} does not record it")))
    return problems


def _identity(cp: Checkpoint) -> tuple:
    return cp.seq, cp.hash, cp.key_id, cp.site, cp.purpose
