"""How much work each benchmark does: the full run and the quick run (smoke test)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sizes:
    # writes per kind (plain / audited) for the single writer, split over the blocks
    single_writer_writes: int
    # writers and writes per writer per kind for the concurrent case
    concurrent_writers: int
    writes_per_concurrent_writer: int
    # ABBA sequences (plain, audited, audited, plain) the writes are split over; each kind
    # runs in 2 * write_rounds blocks, and the ratio is the median over the sequences
    write_rounds: int
    # untimed writes per writer before every timed block: connection pool, statement
    # caches and the OS page cache are warm before the clock starts
    warmup_writes: int
    # events in the cached chain that verification is timed on
    chain_events: int
    # the chain timings are repeated and the median is reported
    chain_repeats: int
    # runs of each signing step; the median is reported
    signing_runs: int

    def as_dict(self) -> dict:
        return asdict(self)


FULL = Sizes(single_writer_writes=4000, concurrent_writers=8, writes_per_concurrent_writer=500,
             write_rounds=4, warmup_writes=10, chain_events=1_000_000, chain_repeats=5,
             signing_runs=10)

QUICK = Sizes(single_writer_writes=200, concurrent_writers=8, writes_per_concurrent_writer=40,
              write_rounds=1, warmup_writes=5, chain_events=20_000, chain_repeats=3,
              signing_runs=5)
