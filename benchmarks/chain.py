"""Chain verification vs. a bare loop of sha256 over the same stored bytes.

The baseline reads ``canonical`` in seq order from the same database and hashes each event:
the least any verifier must do. A second reference hashes the same bytes already in memory,
which shows how much of the baseline is the database read. The verification is timed twice
per repetition: first as a first verification (every event's canonical form checked), then
repeated (the form known up to the head, as the application remembers it). All are
repeated, interleaved, so that drift falls on all alike; times are medians, and the ratio is
the median of the ratios of each repetition, whose bare loop and verification ran back to
back.

The chain is timed on SQLite, then, when PostgreSQL is reachable, copied into a scratch
PostgreSQL database and timed there the same way (the server shares this machine's CPUs).
"""
from __future__ import annotations

import cProfile
import io
import pstats
import statistics
from dataclasses import dataclass, field
from hashlib import sha256
from time import perf_counter, process_time

from sqlalchemy import Engine

from audit.streaming import canonical_bytes_sql, stream_rows
from audit.verify import verify_chain
from benchmarks.report import Figure, Report
from benchmarks.sizes import Sizes
from benchmarks.stored_chain import cached_chain, copy_chain
from qms.db import make_engine

SPEED_RATIO_TARGET = 0.5
MILLION = 1_000_000
MILLION_SECONDS_TARGET = 5.0
# wall time this far above CPU time means other processes took the CPU during the run
BUSY_MACHINE_FACTOR = 1.15
# PostgreSQL adds a copy of the chain and slower loops: fewer repetitions there
POSTGRES_REPEATS = 3
_FETCH = 10_000


@dataclass
class Timings:
    """Wall and CPU seconds of each repetition of one loop; CPU counts the threads too."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def clock(self, function, *args):
        wall, cpu = perf_counter(), process_time()
        value = function(*args)
        self.wall.append(perf_counter() - wall)
        self.cpu.append(process_time() - cpu)
        return value

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def bare_loop(engine: Engine) -> int:
    """Read every stored canonical text in seq order and sha256 it; returns the count.

    The stored UTF-8 bytes as they are (the database encoding is UTF-8), streamed as the
    verifier streams them: a bare loop has no reason to decode them to str and back."""
    count = 0
    for rows in _canonical_chunks(engine, _FETCH):
        for (stored,) in rows:
            sha256(stored).digest()
        count += len(rows)
    return count


def memory_loop(engine: Engine) -> float:
    """Seconds of sha256 alone over the same bytes, read outside the clock."""
    seconds = 0.0
    for rows in _canonical_chunks(engine, _FETCH * 10):
        start = perf_counter()
        for (stored,) in rows:
            sha256(stored).digest()
        seconds += perf_counter() - start
    return seconds


def _canonical_chunks(engine: Engine, chunk_rows: int):
    with engine.connect() as connection:
        sql = f"SELECT {canonical_bytes_sql(connection)} FROM audit_events ORDER BY seq"
        chunks = stream_rows(connection, sql, chunk_rows)
        try:
            yield from chunks
        finally:
            chunks.close()


def verify_all(engine: Engine, form_known=None):
    """A full verification, every event parsed for canonical form (cold); with
    ``form_known`` (a previous result's form_checked) the repeated verification the
    application runs, hashing every event but parsing none it already found canonical."""
    with engine.connect() as connection:
        return verify_chain(connection, public_keys={}, checkpoint_file=None,
                            form_known=form_known)


def profile_verify(engine: Engine, top: int = 10) -> str:
    """cProfile of one verify_chain run: the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.runcall(verify_all, engine)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(report: Report, engine_options: dict, sizes: Sizes, profile: bool = False,
        postgres=None) -> None:
    """Time the cached chain on SQLite and, given a PostgresScratch, on PostgreSQL."""
    path = cached_chain(sizes.chain_events)
    engine = make_engine(f"sqlite:///{path}", **engine_options)
    try:
        time_verification(report, "", engine, sizes.chain_repeats)
        if profile:
            print(profile_verify(engine), flush=True)
    finally:
        engine.dispose()
    if postgres is None:
        return
    url = postgres.new_database("chain")
    print(f"  copying the {sizes.chain_events:,}-event chain into PostgreSQL ...", flush=True)
    copy_chain(path, url)
    engine = make_engine(url)
    try:
        time_verification(report, "PostgreSQL: ", engine,
                          min(sizes.chain_repeats, POSTGRES_REPEATS))
    finally:
        engine.dispose()


def time_verification(report: Report, label: str, engine: Engine, repeats: int) -> None:
    """Bare loop, in-memory loop, first and repeated verification, ``repeats`` times."""
    events = bare_loop(engine)  # untimed: brings the table into the page cache
    bare, verify, repeated, memory = Timings(), Timings(), Timings(), []
    for _ in range(repeats):
        bare.clock(bare_loop, engine)
        memory.append(memory_loop(engine))
        result = verify.clock(verify_all, engine)
        repeated.clock(verify_all, engine, result.form_checked)
    add_figures(report, label, events, bare, statistics.median(memory), verify, result)
    add_repeated_figures(report, label, events, bare, repeated)


def add_figures(report: Report, label: str, events: int, bare: Timings, memory: float,
                verify: Timings, result) -> None:
    """The first verification against the loops; ``label`` names the database ("" for
    SQLite, whose figures keep their names)."""
    baseline = _seconds_and_speed(bare.median, events)
    report.add(Figure("chain", f"{label}bare loop: DB read + sha256, {events:,} events "
                               "(baseline)", baseline, data=_data(bare, events)))
    report.add(Figure("chain", f"{label}in-memory sha256 loop (reference)",
                      _seconds_and_speed(memory, events), baseline=baseline,
                      ratio=f"{bare.median / memory:.2f}",
                      data={"seconds": memory, "events_per_second": events / memory}))
    # speed ratio verify/bare = time ratio bare/verify, per back-to-back repetition
    ratios = [b / v for b, v in zip(bare.wall, verify.wall)]
    ratio = statistics.median(ratios)
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    report.add(Figure("chain", f"{label}verify_chain speed / bare loop speed",
                      _seconds_and_speed(verify.median, events)
                      + f", {len(result.problems)} problems",
                      baseline=baseline, ratio=f"{ratio:.2f}{spread}",
                      target=f">= {SPEED_RATIO_TARGET:.2f}", met=ratio >= SPEED_RATIO_TARGET,
                      data=_data(verify, events) | {"ratio": ratio, "ratios": ratios,
                                                    "problems": len(result.problems)}))
    report.add(million_figure(label, events, verify.median))
    note_disturbances(report, label, bare, result)


def add_repeated_figures(report: Report, label: str, events: int, bare: Timings,
                         repeated: Timings) -> None:
    """The repeated verification (canonical form known up to the previous head)."""
    ratios = [b / v for b, v in zip(bare.wall, repeated.wall)]
    ratio = statistics.median(ratios)
    report.add(Figure("chain", f"{label}repeated verify_chain speed / bare loop speed",
                      _seconds_and_speed(repeated.median, events),
                      baseline=_seconds_and_speed(bare.median, events), ratio=f"{ratio:.2f}",
                      data=_data(repeated, events) | {"ratio": ratio, "ratios": ratios}))
    seconds = repeated.median * MILLION / events
    report.add(Figure("chain", f"{label}repeated verify_chain time for 1,000,000 events",
                      f"{seconds:.2f} s", target=f"< {MILLION_SECONDS_TARGET:.0f} s",
                      met=seconds < MILLION_SECONDS_TARGET,
                      data={"seconds": seconds, "measured": events == MILLION}))


def note_disturbances(report: Report, label: str, bare: Timings, result) -> None:
    """Say when the figures cannot be taken at face value, and why."""
    if result.problems:
        report.note(f"{label}verify_chain found {len(result.problems)} problems in the "
                    f"generated chain, so its time is not that of a full verification; "
                    f"first: {result.problem}")
    # the bare loop runs on one thread, so wall time above CPU time is time spent waiting
    # for a CPU (or, on PostgreSQL, for the server); verify_chain uses other threads and
    # processes, so its CPU time says nothing here
    busy = sum(bare.wall) / sum(bare.cpu)
    if busy > BUSY_MACHINE_FACTOR and not label:
        report.note(f"chain timings disturbed: the bare loop's wall time was {busy - 1:.0%} "
                    f"above its CPU time, so other processes held the CPUs; rerun on an "
                    f"idle machine for steadier figures")


def million_figure(label: str, events: int, verify: float) -> Figure:
    """Time to verify 1,000,000 events: measured, or extrapolated linearly in quick mode."""
    seconds = verify * MILLION / events
    measured = events == MILLION
    value = f"{seconds:.2f} s" + ("" if measured else f" (extrapolated from {events:,})")
    return Figure("chain", f"{label}verify_chain time for 1,000,000 events", value,
                  target=f"< {MILLION_SECONDS_TARGET:.0f} s",
                  met=seconds < MILLION_SECONDS_TARGET,
                  data={"seconds": seconds, "measured": measured})


def _data(timings: Timings, events: int) -> dict:
    return {"seconds": timings.median, "events_per_second": events / timings.median,
            "cpu_seconds": timings.median_cpu, "wall_samples": timings.wall,
            "cpu_samples": timings.cpu}


def _seconds_and_speed(seconds: float, events: int) -> str:
    shown = f"{seconds:.3f}" if seconds < 1 else f"{seconds:.2f}"
    return f"{shown} s ({events / seconds:,.0f} events/s)"
