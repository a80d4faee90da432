"""Backward and forward trace (qms.materials.trace) over a large genealogy, SQLite and
PostgreSQL, against the recursive CTE alone (the walk in the database, without reading a lot)
as the same-run baseline. Reported apart: the first trace in a process (it reads the index)
and the first trace of each start lot (its lots' texts are read, then kept).

The genealogy is layered like a plant's: received raw lots, two levels of intermediate
batches, finished batches; each batch consumes ~4 lots of the level below (the finished
level also a raw packaging lot), so edges are ~3x lots. A few raw lots are "hubs" (a bulk API
lot used in hundreds of granulations), so a forward trace from them reaches ~10,000 lots:
the recall-scope case the target is about. Rows go in with bulk inserts below the ORM
(executemany on SQLite, COPY on PostgreSQL); the schema is the real migrated one.
"""
from __future__ import annotations

import json
import random
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from time import perf_counter

from sqlalchemy import Engine, func, select, text

from benchmarks.report import Figure, Report
from qms.db import make_engine
from qms.materials.trace import reachable_query, trace, trace_json

TARGET_P95_MS = 50.0
SEED = 20260301
STAMP = "2026-01-01 00:00:00.000000"


@dataclass(frozen=True)
class TraceSizes:
    raw: int  # received lots, level 0
    levels: tuple[int, ...]  # produced lots per level: intermediates ..., finished
    fan_in: int  # lots each batch consumes from the level below (mean)
    hubs: int  # raw lots picked far more often than the others
    hub_share: float  # share of level-1 picks that go to a hub
    samples: int  # start lots per direction
    hub_samples: int  # hub start lots (each timed `repeats` times)
    repeats: int


FULL = TraceSizes(raw=300_000, levels=(250_000, 250_000, 200_000), fan_in=4, hubs=20,
                  hub_share=0.01, samples=200, hub_samples=20, repeats=5)
QUICK = TraceSizes(raw=3_000, levels=(2_500, 2_500, 2_000), fan_in=4, hubs=5,
                   hub_share=0.01, samples=40, hub_samples=5, repeats=2)


def genealogy(sizes: TraceSizes) -> tuple[list[int], Iterator[tuple[int, int]]]:
    """(level sizes, edges (input id, output id)). Ids are 1..N in level order."""
    rng = random.Random(SEED)
    counts = [sizes.raw, *sizes.levels]
    starts = [1 + sum(counts[:i]) for i in range(len(counts))]

    def edges() -> Iterator[tuple[int, int]]:
        for level in range(1, len(counts)):
            below, below_count = starts[level - 1], counts[level - 1]
            for output in range(starts[level], starts[level] + counts[level]):
                picks = set()
                for _ in range(rng.randint(sizes.fan_in - 2, sizes.fan_in + 2)):
                    if level == 1 and rng.random() < sizes.hub_share:
                        picks.add(1 + rng.randrange(sizes.hubs))
                    else:
                        picks.add(below + rng.randrange(below_count))
                if level == len(counts) - 1:  # packaging: a raw lot into the finished lot
                    picks.add(1 + rng.randrange(sizes.raw))
                yield from ((source, output) for source in sorted(picks))
    return counts, edges()


# ---- bulk load -------------------------------------------------------------------------

def _lot_rows(counts: list[int]) -> Iterator[tuple]:
    materials = (1, 2, 2, 3)  # raw, intermediate, intermediate, finished
    lot_id = 0
    for level, count in enumerate(counts):
        origin = "received" if level == 0 else "produced"
        for _ in range(count):
            lot_id += 1
            yield (lot_id, f"L{lot_id:07d}", "released", 1, STAMP, "bench", STAMP, "bench",
                   materials[min(level, 3)], origin, 1 if level == 0 else None, None,
                   "100", "kg", None, "2030-01-01", None)


def _batch_rows(counts: list[int]) -> Iterator[tuple]:
    first = counts[0] + 1
    for lot_id in range(first, sum(counts) + 1):
        batch_id = lot_id - counts[0]
        yield (batch_id, f"L{lot_id:07d}", "produced", 1, STAMP, "bench", STAMP, "bench",
               2 if lot_id < sum(counts) - counts[-1] + 1 else 3, lot_id, "L1", "100", "kg",
               None)


def _edge_rows(edges: Iterator[tuple[int, int]], raw: int) -> Iterator[tuple]:
    for edge_id, (source, target) in enumerate(edges, start=1):
        yield (edge_id, target - raw, source, target, "1", "kg", STAMP, "bench", None)


MASTER = [
    "INSERT INTO materials VALUES (1,'RM-API','active',1,'{t}','bench','{t}','bench','API','raw','kg',365,'')",
    "INSERT INTO materials VALUES (2,'IM-GRAN','active',1,'{t}','bench','{t}','bench','Granulate','intermediate','kg',90,'')",
    "INSERT INTO materials VALUES (3,'FG-TAB','active',1,'{t}','bench','{t}','bench','Tablets','finished','kg',730,'')",
    "INSERT INTO suppliers VALUES (1,'SUP-ACME','approved',1,'{t}','bench','{t}','bench','Acme','','')",
]
TABLES = (("lots", 17), ("batches", 14), ("lot_consumptions", 9))


def load(engine: Engine, sizes: TraceSizes) -> tuple[list[int], int, float]:
    """Fill the genealogy; (level sizes, edge count, seconds)."""
    started = perf_counter()
    counts, edges = genealogy(sizes)
    rows = {"lots": _lot_rows(counts), "batches": _batch_rows(counts),
            "lot_consumptions": _edge_rows(edges, counts[0])}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            # fixture data, not the measurement: a large page cache for the index builds
            cursor.execute("PRAGMA cache_size=-262144")
            cursor.execute("BEGIN")  # the driver is in autocommit mode (qms.db)
        for statement in MASTER:
            cursor.execute(statement.format(t=STAMP))
        for table, width in TABLES:
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
            else:
                marks = ",".join("?" * width)
                cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        raw.commit()
        _maintain(engine, raw)
    finally:
        raw.close()
    with engine.connect() as connection:
        edge_count = connection.scalar(select(func.count()).select_from(text("lot_consumptions")))
    return counts, edge_count, perf_counter() - started


def _maintain(engine: Engine, raw) -> None:
    """What autovacuum (PostgreSQL: statistics and the visibility map that index-only scans
    need) or a maintenance run (SQLite: statistics) leaves behind on a live database."""
    cursor = raw.cursor()
    if engine.dialect.name == "postgresql":
        raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction
        try:
            cursor.execute("VACUUM ANALYZE")
        finally:
            raw.driver_connection.autocommit = False
    else:
        cursor.execute("ANALYZE")


# ---- timing ----------------------------------------------------------------------------

@dataclass
class Sample:
    trace_ms: list[float]
    cte_ms: list[float]
    reached: list[int]
    first_ms: list[float]  # the first trace of each start lot: its lots' texts not yet kept

    def add_figure(self, report: Report, backend: str, label: str) -> None:
        p50, p95 = _percentile(self.trace_ms, 50), _percentile(self.trace_ms, 95)
        c50, c95 = _percentile(self.cte_ms, 50), _percentile(self.cte_ms, 95)
        reached = f"lots reached median {statistics.median(self.reached):,.0f}, " \
                  f"max {max(self.reached):,}"
        report.add(Figure(
            "trace", f"{backend}: {label} trace p50/p95 ({len(self.trace_ms)} traces)",
            f"{p50:.1f} / {p95:.1f} ms; {reached}",
            baseline=f"recursive CTE alone {c50:.1f} / {c95:.1f} ms",
            ratio=f"{p95 / c95:.2f}" if c95 else "", target=f"p95 < {TARGET_P95_MS:.0f} ms",
            met=p95 < TARGET_P95_MS,
            data={"p50_ms": p50, "p95_ms": p95, "cte_p50_ms": c50, "cte_p95_ms": c95,
                  "reached_median": statistics.median(self.reached),
                  "reached_max": max(self.reached), "traces": len(self.trace_ms)}))
        f50, f95 = _percentile(self.first_ms, 50), _percentile(self.first_ms, 95)
        report.add(Figure(
            "trace", f"{backend}: {label}, first trace from each lot (its lots read)",
            f"{f50:.1f} / {f95:.1f} ms", baseline=f"recursive CTE alone {c50:.1f} / {c95:.1f} ms",
            ratio=f"{f95 / c95:.2f}" if c95 else "",
            data={"p50_ms": f50, "p95_ms": f95, "traces": len(self.first_ms)}))


def _percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def time_traces(engine: Engine, lot_ids: list[int], direction: str, repeats: int) -> Sample:
    sample = Sample([], [], [], [])
    with engine.connect() as connection:
        for lot_id in lot_ids:
            number = f"L{lot_id:07d}"
            start = perf_counter()
            trace_json(connection, number, direction)
            sample.first_ms.append(1000 * (perf_counter() - start))
            for _ in range(repeats):
                start = perf_counter()
                ids = connection.execute(reachable_query(lot_id, direction)).all()
                middle = perf_counter()
                answer = trace_json(connection, number, direction)  # what the API sends
                end = perf_counter()
                result = json.loads(answer)
                sample.cte_ms.append(1000 * (middle - start))
                sample.trace_ms.append(1000 * (end - middle))
                sample.reached.append(result["counts"]["lots"])
                assert len(ids) == result["counts"]["lots"]
            connection.rollback()
    return sample


def _index_build(engine: Engine, backend: str, direction: str, edges: int,
                 number: str) -> Figure:
    """The first trace in a process reads the whole direction into memory."""
    started = perf_counter()
    with engine.connect() as connection:
        trace(connection, number, direction)
    seconds = perf_counter() - started
    return Figure("trace", f"{backend}: first trace {direction} in a process (index built)",
                  f"{seconds:.1f} s for {edges:,} entries",
                  data={"seconds": seconds, "entries": edges})


def run_backend(report: Report, scratch, options: dict, sizes: TraceSizes) -> None:
    url = scratch.new_database("trace")
    engine = make_engine(url, **options) if url.startswith("sqlite") else make_engine(url)
    try:
        counts, edges, seconds = load(engine, sizes)
        total = sum(counts)
        report.add(Figure("trace", f"{scratch.backend}: genealogy loaded",
                          f"{total:,} lots, {edges:,} edges in {seconds:.0f} s",
                          data={"lots": total, "edges": edges, "load_seconds": seconds}))
        for direction in ("backward", "forward"):
            # from a raw lot that is no hub: the hubs' first traces are timed below
            report.add(_index_build(engine, scratch.backend, direction, edges,
                                    f"L{sizes.hubs + 1:07d}"))
        rng = random.Random(SEED + 1)
        finished_start = total - counts[-1] + 1
        backward = rng.sample(range(finished_start, total + 1), sizes.samples)
        forward = rng.sample(range(sizes.hubs + 1, counts[0] + 1), sizes.samples)
        time_traces(engine, backward, "backward", 1).add_figure(
            report, scratch.backend, "backward (finished lots)")
        time_traces(engine, forward, "forward", 1).add_figure(
            report, scratch.backend, "forward (raw lots)")
        hubs = list(range(1, min(sizes.hubs, sizes.hub_samples) + 1))
        time_traces(engine, hubs, "forward", sizes.repeats).add_figure(
            report, scratch.backend, "forward (hub raw lots, recall scope)")
    finally:
        engine.dispose()


def run(report: Report, scratches: list, options: dict, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    report.sizes["trace"] = asdict(sizes)
    for scratch in scratches:
        run_backend(report, scratch, options, sizes)
