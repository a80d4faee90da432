"""Audited write vs. the same plain insert: SQLite and PostgreSQL, 1 and N writers.

Each case writes into two fresh databases, one per kind (plain / audited), in blocks in ABBA
order (plain, audited, audited, plain, repeated) so that drift during the run (page cache,
table growth, other load on the machine) falls on both kinds alike. N writers are N
processes (spawn), released together by a barrier after their untimed warm-up; a block's
wall time runs from the barrier to the last writer's last commit.
"""
from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool
from time import perf_counter

from benchmarks.chain_check import ChainCheck, check_written_chain
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
    label: str  # prefix of the record numbers; records are a function of it
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
        _warm_up(database, write, warmup, block.actor)
        if _start_line is not None:
            _start_line.wait(BARRIER_TIMEOUT_S)
        start = perf_counter()  # CLOCK_MONOTONIC: comparable across processes
        for record in records:
            write(database, record, block.actor)
        end = perf_counter()
    finally:
        database.dispose()
    return BlockTiming(start, end, len(records))


def _warm_up(database: Database, write, records, actor: str) -> None:
    try:
        for record in records:
            write(database, record, actor)
    except BaseException:
        # release the writers already waiting, instead of leaving them to time out
        if _start_line is not None:
            _start_line.abort()
        raise


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
    writes_per_writer: int  # per kind, over all of its blocks

    @property
    def name(self) -> str:
        return f"{self.backend}, {self.writers} writer{'s' if self.writers > 1 else ''}"


@dataclass
class CaseResult:
    urls: dict[str, str]  # database per kind
    totals: dict[str, KindTotal]
    # audited / plain time per write of each ABBA sequence, which ran close together in time
    sequence_ratios: list[float]

    @property
    def ratio(self) -> float:
        """The median over the sequences: one disturbed block (another process hogging the
        CPU or the disk) moves the median far less than it moves the totals."""
        return statistics.median(self.sequence_ratios)


def measure_case(case: Case, scratch, engine_options: dict, sizes: Sizes,
                 pool: Pool | None) -> CaseResult:
    """Run ``sizes.write_rounds`` ABBA sequences of blocks, each kind in its own database."""
    tag = f"{case.writers}w"
    urls = {kind: scratch.new_database(f"{tag}_{kind}") for kind in ("plain", "audited")}
    result = CaseResult(urls, {kind: KindTotal() for kind in urls}, [])
    per_block = case.writes_per_writer // (2 * sizes.write_rounds)
    for sequence in range(sizes.write_rounds):
        in_sequence = {kind: KindTotal() for kind in urls}
        for position, kind in enumerate(ABBA):
            # the n-th block of either kind writes the same records: equal work for both
            label = f"s{sequence}b{ABBA[:position].count(kind)}"
            blocks = [Block(kind, urls[kind], engine_options, f"{label}w{writer}", per_block,
                            sizes.warmup_writes, f"writer{writer}")
                      for writer in range(case.writers)]
            writes, seconds = time_blocks(blocks, pool)
            for total in (in_sequence[kind], result.totals[kind]):
                total.writes += writes
                total.seconds += seconds
        result.sequence_ratios.append(in_sequence["audited"].ms_per_write
                                      / in_sequence["plain"].ms_per_write)
    return result


def ratio_figure(case: Case, result: CaseResult) -> Figure:
    plain, audited = result.totals["plain"], result.totals["audited"]
    ratios = result.sequence_ratios
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    on_sqlite = case.backend == "SQLite"
    return Figure(
        section="writes", name=f"{case.name}: audited / plain time per write",
        value=f"{audited.ms_per_write:.2f} ms ({audited.writes_per_second:,.0f} writes/s)",
        baseline=f"{plain.ms_per_write:.2f} ms ({plain.writes_per_second:,.0f} writes/s)",
        ratio=f"{result.ratio:.2f}x{spread}",
        target=f"<= {SQLITE_RATIO_TARGET:.1f}x" if on_sqlite else "",
        met=result.ratio <= SQLITE_RATIO_TARGET if on_sqlite else None,
        data={"backend": case.backend, "writers": case.writers, "ratio": result.ratio,
              "sequence_ratios": ratios,
              **{f"{kind}_{key}": value for kind, total in result.totals.items()
                 for key, value in (("writes", total.writes), ("seconds", total.seconds),
                                    ("ms_per_write", total.ms_per_write),
                                    ("writes_per_second", total.writes_per_second))}})


def chain_figure(case: Case, check: ChainCheck) -> Figure:
    verdict = ("verify_chain intact" if check.verified
               else f"verify_chain BROKEN at seq {check.first_bad_seq}: {check.problem}")
    seqs = f"seq {check.first_seq}..{check.last_seq}"
    if check.gapless:
        seqs += " gapless"
    else:
        seqs += f" with {check.events} of {check.expected_events} events: NOT gapless"
    return Figure(
        section="writes", name=f"{case.name}: chain after the audited run",
        value=f"{check.broken_links} breaks, {verdict}, {seqs}",
        target="0 breaks, gapless", met=check.intact,
        data={"breaks": check.broken_links, "verified": check.verified,
              "first_bad_seq": check.first_bad_seq, "problem": check.problem,
              "events": check.events, "expected_events": check.expected_events,
              "first_seq": check.first_seq, "last_seq": check.last_seq,
              "gapless": check.gapless})


def run(report: Report, scratches: list, engine_options: dict, sizes: Sizes) -> None:
    """Measure every case on every reachable backend and add the figures to ``report``."""
    cases = [(scratch, Case(scratch.backend, 1, sizes.single_writer_writes))
             for scratch in scratches]
    concurrent = [(scratch, Case(scratch.backend, sizes.concurrent_writers,
                                 sizes.writes_per_concurrent_writer))
                  for scratch in scratches]
    for scratch, case in cases:
        report.add(ratio_figure(case, measure_case(case, scratch, engine_options, sizes,
                                                   pool=None)))
    with writer_pool(sizes.concurrent_writers) as pool:
        for scratch, case in concurrent:
            result = measure_case(case, scratch, engine_options, sizes, pool)
            report.add(ratio_figure(case, result))
            # the timed audited writes plus every writer's warm-up before each block
            warmups = 2 * sizes.write_rounds * case.writers * sizes.warmup_writes
            events = result.totals["audited"].writes + warmups
            check = check_written_chain(result.urls["audited"], engine_options, events)
            report.add(chain_figure(case, check))
