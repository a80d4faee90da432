"""Chain verification vs. a bare loop of sha256 over the same stored bytes.

The baseline reads ``canonical`` in seq order from the same database and hashes each event:
the least any verifier must do. A second reference hashes the same bytes already in memory,
which shows how much of the baseline is the database read. Every timing is repeated
(interleaved, so drift falls on all three alike) and the median is reported.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import statistics
from hashlib import sha256
from time import perf_counter

from sqlalchemy import Engine

from audit.verify import verify_chain
from benchmarks.report import Figure, Report
from benchmarks.sizes import Sizes
from benchmarks.stored_chain import cached_chain
from qms.db import make_engine

SPEED_RATIO_TARGET = 0.5
MILLION = 1_000_000
MILLION_SECONDS_TARGET = 5.0
# the stored UTF-8 bytes as they are (the database encoding is UTF-8): a bare loop has no
# reason to decode them to str and encode them again
_SELECT_CANONICAL = "SELECT CAST(canonical AS BLOB) FROM audit_events ORDER BY seq"
_FETCH = 10_000


def bare_loop(engine: Engine) -> tuple[float, int]:
    """Seconds to read every stored canonical text in seq order and sha256 it."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = perf_counter()
        cursor.execute(_SELECT_CANONICAL)
        count = 0
        while rows := cursor.fetchmany(_FETCH):
            for (stored,) in rows:
                sha256(stored).digest()
            count += len(rows)
        return perf_counter() - start, count
    finally:
        raw.close()


def memory_loop(engine: Engine) -> float:
    """Seconds of sha256 alone over the same bytes, read outside the clock."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(_SELECT_CANONICAL)
        seconds = 0.0
        while rows := cursor.fetchmany(_FETCH * 10):
            start = perf_counter()
            for (stored,) in rows:
                sha256(stored).digest()
            seconds += perf_counter() - start
        return seconds
    finally:
        raw.close()


def timed_verify(engine: Engine):
    """Seconds of verify_chain over the whole chain, and its result."""
    with engine.connect() as connection:
        start = perf_counter()
        result = verify_chain(connection, public_keys={}, checkpoint_file=None)
        return perf_counter() - start, result


def profile_verify(engine: Engine, top: int = 10) -> str:
    """cProfile of one verify_chain run: the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    with engine.connect() as connection:
        profiler.runcall(verify_chain, connection, public_keys={}, checkpoint_file=None)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(report: Report, engine_options: dict, sizes: Sizes, profile: bool = False) -> None:
    path = cached_chain(sizes.chain_events)
    engine = make_engine(f"sqlite:///{path}", **engine_options)
    try:
        bare_loop(engine)  # untimed: brings the file into the page cache for every run
        bare, memory, verify = [], [], []
        for _ in range(sizes.chain_repeats):
            seconds, events = bare_loop(engine)
            bare.append(seconds)
            memory.append(memory_loop(engine))
            seconds, result = timed_verify(engine)
            verify.append(seconds)
        add_figures(report, events, statistics.median(bare), statistics.median(memory),
                    statistics.median(verify), result)
        if profile:
            print(profile_verify(engine), flush=True)
    finally:
        engine.dispose()


def add_figures(report: Report, events: int, bare: float, memory: float, verify: float,
                result) -> None:
    bare_speed, verify_speed = events / bare, events / verify
    baseline = _seconds_and_speed(bare, events)
    report.add(Figure("chain", f"bare loop: DB read + sha256, {events:,} events (baseline)",
                      baseline, data={"seconds": bare, "events_per_second": bare_speed}))
    report.add(Figure("chain", "in-memory sha256 loop (reference)",
                      _seconds_and_speed(memory, events), baseline=baseline,
                      ratio=f"{(events / memory) / bare_speed:.2f}",
                      data={"seconds": memory, "events_per_second": events / memory}))
    ratio = verify_speed / bare_speed
    problems = len(result.problems)
    report.add(Figure("chain", "verify_chain speed / bare loop speed",
                      _seconds_and_speed(verify, events) + f", {problems} problems",
                      baseline=baseline, ratio=f"{ratio:.2f}",
                      target=f">= {SPEED_RATIO_TARGET:.2f}", met=ratio >= SPEED_RATIO_TARGET,
                      data={"seconds": verify, "events_per_second": verify_speed,
                            "ratio": ratio, "problems": problems}))
    report.add(million_figure(events, verify))
    if not result.ok:
        report.note(f"verify_chain found {problems} problems in the generated chain, so its "
                    f"time is not that of a full verification; first: {result.problem}")


def million_figure(events: int, verify: float) -> Figure:
    """Time to verify 1,000,000 events: measured, or extrapolated linearly in quick mode."""
    seconds = verify * MILLION / events
    measured = events == MILLION
    value = f"{seconds:.2f} s" + ("" if measured else f" (extrapolated from {events:,})")
    return Figure("chain", "verify_chain time for 1,000,000 events", value,
                  target=f"< {MILLION_SECONDS_TARGET:.0f} s",
                  met=seconds < MILLION_SECONDS_TARGET,
                  data={"seconds": seconds, "measured": measured})


def _seconds_and_speed(seconds: float, events: int) -> str:
    shown = f"{seconds:.3f}" if seconds < 1 else f"{seconds:.2f}"
    return f"{shown} s ({events / seconds:,.0f} events/s)"
