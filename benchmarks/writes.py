"""Audited write vs. the same plain insert: SQLite and PostgreSQL, 1 and N writers.

Each case writes into two fresh databases, one per kind (plain / audited), in ABBA order
(plain, audited, audited, plain) so that drift during the run (page cache, table growth,
other load on the machine) falls on both kinds alike. N writers are N processes (spawn),
released together by a barrier after their untimed warm-up; a block's wall time runs from
the barrier to the last writer's last commit.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool
from time import perf_counter

from sqlalchemy import func, select

from audit.schema import audit_events
from audit.verify import verify_chain
from benchmarks.records import WRITES, make_records
from benchmarks.report import Figure, Report
from benchmarks.sizes import Sizes
from qms.db import Database, make_engine

ABBA = ("plain", "audited", "audited", "plain")
# the ratio target holds on SQLite, the default store (issue text)
SQLITE_RATIO_TARGET = 1.5
BARRIER_TIMEOUT_S = 300

# set in each worker process by the pool initializer; None for the in-process single writer
_start_line = None


@dataclass(frozen=True)
class Block:
    """One writer's share of one timed block."""
    kind: str
    url: str
    engine_options: dict
    label: str  # record numbers; the same labels in both kinds, so both write equal data
    writes: int
    warmup: int
    actor: str


@dataclass(frozen=True)
class BlockTiming:
    start: float
    end: float
    writes: int


@dataclass
class KindTotal:
    writes: int = 0
    seconds: float = 0.0

    @property
    def ms_per_write(self) -> float:
        return 1000 * self.seconds / self.writes

    @property
    def writes_per_second(self) -> float:
        return self.writes / self.seconds


def run_block(block: Block) -> BlockTiming:
    """Warm up, wait for the other writers, then time ``block.writes`` writes."""
    write = WRITES[block.kind]
    warmup = make_records(f"{block.label}-warm", block.warmup)
    records = make_records(block.label, block.writes)
    database = Database(make_engine(block.url, **block.engine_options))
    try:
        for record in warmup:
            write(database, record, block.actor)
        if _start_line is not None:
            _start_line.wait(BARRIER_TIMEOUT_S)
        start = perf_counter()  # CLOCK_MONOTONIC: comparable across processes
        for record in records:
            write(database, record, block.actor)
        end = perf_counter()
    finally:
        database.dispose()
    return BlockTiming(start, end, len(records))


def _set_start_line(barrier) -> None:
    global _start_line
    _start_line = barrier


@contextmanager
def writer_pool(writers: int) -> Iterator[Pool]:
    """``writers`` spawned processes sharing one start barrier.

    With as many blocks as processes and every block waiting at the barrier, each process
    necessarily takes exactly one block, so all writers really run at once.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    with context.Pool(writers, initializer=_set_start_line, initargs=(barrier,)) as pool:
        yield pool


def time_blocks(blocks: list[Block], pool: Pool | None) -> tuple[int, float]:
    """Total writes and wall seconds of blocks run together."""
    if pool is None:
        timings = [run_block(block) for block in blocks]
    else:
        timings = pool.map(run_block, blocks, chunksize=1)
    wall = max(t.end for t in timings) - min(t.start for t in timings)
    return sum(t.writes for t in timings), wall


@dataclass(frozen=True)
class Case:
    backend: str
    writers: int
    writes_per_writer: int  # per kind, over both of its blocks

    @property
    def name(self) -> str:
        return f"{self.backend}, {self.writers} writer{'s' if self.writers > 1 else ''}"


def measure_case(case: Case, scratch, engine_options: dict, sizes: Sizes,
                 pool: Pool | None) -> tuple[dict[str, KindTotal], dict[str, str]]:
    """Run the ABBA blocks of one case; returns totals and database URL per kind."""
    tag = f"{case.writers}w"
    urls = {kind: scratch.new_database(f"{tag}_{kind}") for kind in ("plain", "audited")}
    totals = {kind: KindTotal() for kind in urls}
    rounds = {kind: 0 for kind in urls}
    per_block = case.writes_per_writer // 2
    for kind in ABBA:
        blocks = [Block(kind, urls[kind], engine_options, f"r{rounds[kind]}w{writer}",
                        per_block, sizes.warmup_writes, f"writer{writer}")
                  for writer in range(case.writers)]
        writes, seconds = time_blocks(blocks, pool)
        totals[kind].writes += writes
        totals[kind].seconds += seconds
        rounds[kind] += 1
    return totals, urls


def ratio_figure(case: Case, totals: dict[str, KindTotal]) -> Figure:
    plain, audited = totals["plain"], totals["audited"]
    ratio = audited.ms_per_write / plain.ms_per_write
    on_sqlite = case.backend == "SQLite"
    return Figure(
        section="writes", name=f"{case.name}: audited / plain time per write",
        value=f"{audited.ms_per_write:.2f} ms ({audited.writes_per_second:,.0f} writes/s)",
        baseline=f"{plain.ms_per_write:.2f} ms ({plain.writes_per_second:,.0f} writes/s)",
        ratio=f"{ratio:.2f}x", target=f"<= {SQLITE_RATIO_TARGET:.1f}x" if on_sqlite else "",
        met=ratio <= SQLITE_RATIO_TARGET if on_sqlite else None,
        data={"backend": case.backend, "writers": case.writers, "ratio": ratio,
              **{f"{kind}_{key}": value for kind, total in totals.items()
                 for key, value in (("writes", total.writes), ("seconds", total.seconds),
                                    ("ms_per_write", total.ms_per_write),
                                    ("writes_per_second", total.writes_per_second))}})


def chain_figure(case: Case, url: str, engine_options: dict, expected_events: int) -> Figure:
    """Verify the chain the concurrent audited writers produced, and that seq is gapless."""
    engine = make_engine(url, **engine_options)
    try:
        with engine.connect() as connection:
            result = verify_chain(connection, public_keys={}, checkpoint_file=None)
            count, first, last = connection.execute(
                select(func.count(), func.min(audit_events.c.seq),
                       func.max(audit_events.c.seq))).one()
    finally:
        engine.dispose()
    breaks = len(result.problems)
    gapless = count == expected_events and first == 1 and last == count
    return Figure(
        section="writes", name=f"{case.name}: chain after the audited run",
        value=f"{breaks} breaks; seq {first}..{last}, {count} events, "
              f"{'gapless' if gapless else 'NOT gapless'}",
        target="0 breaks, gapless", met=breaks == 0 and gapless,
        data={"breaks": breaks, "events": count, "expected_events": expected_events,
              "first_seq": first, "last_seq": last, "gapless": gapless,
              "problems": [str(problem) for problem in result.problems[:10]]})


def run(report: Report, scratches: list, engine_options: dict, sizes: Sizes) -> None:
    """Measure every case on every reachable backend and add the figures to ``report``."""
    cases = [(scratch, Case(scratch.backend, 1, sizes.single_writer_writes))
             for scratch in scratches]
    concurrent = [(scratch, Case(scratch.backend, sizes.concurrent_writers,
                                 sizes.writes_per_concurrent_writer))
                  for scratch in scratches]
    for scratch, case in cases:
        totals, _urls = measure_case(case, scratch, engine_options, sizes, pool=None)
        report.add(ratio_figure(case, totals))
    with writer_pool(sizes.concurrent_writers) as pool:
        for scratch, case in concurrent:
            totals, urls = measure_case(case, scratch, engine_options, sizes, pool)
            report.add(ratio_figure(case, totals))
            # both audited blocks plus every writer's warm-up before each of them
            events = totals["audited"].writes + 2 * case.writers * sizes.warmup_writes
            report.add(chain_figure(case, urls["audited"], engine_options, events))
