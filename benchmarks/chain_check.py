"""Is the chain that concurrent audited writers produced intact?

``verify_chain`` gives the verdict and names the first bad seq. Beside it the links are
counted directly (prev_hash against the previous hash, hash against sha256 of the stored
bytes), so that a broken run reports how many breaks there are, not only the first; and seq
is checked to run 1..n without gaps, with exactly as many events as writes committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import Connection, select

from audit.schema import GENESIS_HASH, audit_events
from audit.verify import verify_chain
from qms.db import make_engine


@dataclass(frozen=True)
class ChainCheck:
    verified: bool
    first_bad_seq: int | None
    problem: str | None
    broken_links: int
    events: int
    expected_events: int
    first_seq: int | None
    last_seq: int | None

    @property
    def gapless(self) -> bool:
        return (self.events == self.expected_events and self.first_seq == 1
                and self.last_seq == self.events)

    @property
    def intact(self) -> bool:
        return self.verified and self.broken_links == 0 and self.gapless


def check_written_chain(url: str, engine_options: dict, expected_events: int) -> ChainCheck:
    engine = make_engine(url, **engine_options)
    try:
        with engine.connect() as connection:
            result = verify_chain(connection, public_keys={}, checkpoint_file=None)
            seqs, broken = walk_links(connection)
    finally:
        engine.dispose()
    # no keys here: consistency is the question, so UNANCHORED counts as verified
    return ChainCheck(verified=not result.problems, first_bad_seq=result.first_bad_seq,
                      problem=result.problem, broken_links=broken, events=len(seqs),
                      expected_events=expected_events, first_seq=min(seqs, default=None),
                      last_seq=max(seqs, default=None))


def walk_links(connection: Connection) -> tuple[list[int], int]:
    """Every seq in order, and how many events do not link to their predecessor."""
    rows = connection.execute(select(audit_events.c.seq, audit_events.c.prev_hash,
                                     audit_events.c.hash, audit_events.c.canonical)
                              .order_by(audit_events.c.seq))
    seqs, broken, previous = [], 0, GENESIS_HASH
    for seq, prev_hash, digest, canonical in rows:
        if prev_hash != previous or digest != sha256(canonical.encode("utf-8")).hexdigest():
            broken += 1
        seqs.append(seq)
        previous = digest
    return seqs, broken
