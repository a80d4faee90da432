"""ERP delivery (qms.erp.delivery): 10,000 events by file drop and by webhook, against the
same work without the database (the same atomic file writes; the same signed POSTs to the
same receiver), and the latency from a decision's commit to its arrival at a webhook
receiver: woken by the commit (qms.erp.wake: a scheduler process with the delivery job of
`qms jobs`, NOTIFY on PostgreSQL, a datagram on SQLite), against a loop that only polls
every ``[erp] poll_seconds``, as delivery did before.

The outbox rows are written in bulk below the services (the benchmark is about delivery);
the latency samples go through ``write_event`` in a unit of work, as a decision does.
"""
from __future__ import annotations

import json
import multiprocessing
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from time import perf_counter

from sqlalchemy import insert, select

from benchmarks.report import Figure, Report
from qms.db import Database, make_engine, utcnow
from qms.erp import delivery, wake, webhook
from qms.erp.b2mml import sync_material_lot
from qms.erp.models import ErpEvent
from qms.erp.outbox import encode, write_event
from qms.materials.models import Lot, Material

STAMP = "2026-01-01 00:00:00.000000"
POLICY = delivery.RetryPolicy(max_attempts=10, base_seconds=1, cap_seconds=60)


@dataclass(frozen=True)
class ErpSizes:
    events: int
    events_per_lot: int
    latency_samples: int  # commits measured with the poll alone (the baseline)
    wake_samples: int  # commits measured woken by the commit


FULL = ErpSizes(events=10_000, events_per_lot=5, latency_samples=40, wake_samples=200)
QUICK = ErpSizes(events=500, events_per_lot=5, latency_samples=8, wake_samples=20)


class _Receiver:
    """A plain local webhook endpoint: 204 for every POST, arrival time per webhook-id."""

    def __init__(self) -> None:
        arrivals: dict[str, float] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                arrivals.setdefault(self.headers["webhook-id"], time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass
        self.arrivals = arrivals
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _payloads(count: int, per_lot: int) -> list[dict]:
    statuses = ("released", "on_hold", "released", "rejected", "released")
    events = []
    for seq in range(1, count + 1):
        status = statuses[(seq - 1) % len(statuses)]
        events.append({
            "event_id": str(uuid.uuid4()), "type": "lot.status_changed", "schema_version": 1,
            "occurred_at": "2026-01-01T00:00:00.000000Z", "sequence": seq,
            "lot": f"L{(seq - 1) % (count // per_lot):07d}", "batch": None,
            "material": "RM-API", "material_name": "Paracetamol 对乙酰氨基酚", "status": status,
            "previous_status": "quarantine",
            "disposition": "Unrestricted" if status == "released" else "Restricted",
            "usage_decision": {"released": "A", "rejected": "R"}.get(status),
            "quantity": "25.000", "unit": "kg", "expires_on": "2029-12-31", "inspection": None,
            "decided_by": {"username": "anna.approver", "name": "Anna Approver",
                           "signature_id": seq, "meaning": "released"}, "reason": None})
    return events


def _fill(db: Database, payloads: list[dict]) -> None:
    with db.unit_of_work() as session:
        session.execute(insert(ErpEvent), [
            {"seq": p["sequence"], "event_id": p["event_id"], "type": p["type"], "lot": p["lot"],
             "occurred_at": utcnow(), "payload": encode(p)} for p in payloads])


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} events/s"


def _file_drop(report: Report, backend: str, db: Database, payloads: list[dict]) -> None:
    folder, baseline_folder = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    try:
        started = perf_counter()
        for payload in payloads:  # the same atomic writes, no database
            stem = f"{payload['sequence']:012d}-{payload['event_id']}"
            text = encode(payload)
            delivery._write_atomically(baseline_folder, f"{stem}.xml",
                                       sync_material_lot(json.loads(text)))
            delivery._write_atomically(baseline_folder, f"{stem}.json", text.encode())
        baseline = perf_counter() - started
        started = perf_counter()
        done = delivery.deliver_until_idle(db, [delivery.file_drop(folder)], POLICY)
        seconds = perf_counter() - started
        assert done.delivered == {"file": len(payloads)}, done
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(baseline_folder, ignore_errors=True)
    report.add(Figure("erp", f"{backend}: file drop, {len(payloads):,} events (JSON + B2MML)",
                      _rate(len(payloads), seconds), baseline=f"same files without the "
                      f"database {_rate(len(payloads), baseline)}",
                      ratio=f"{baseline / seconds:.2f}",
                      data={"events": len(payloads), "seconds": seconds,
                            "baseline_seconds": baseline}))


def _webhook(report: Report, backend: str, db: Database, payloads: list[dict]) -> None:
    receiver, secret = _Receiver(), webhook.new_secret()
    try:
        started = perf_counter()
        for payload in payloads:  # the same signed POSTs, no database
            webhook.post_event(receiver.url, secret, payload["event_id"],
                               encode(payload).encode(), timeout=10)
        baseline = perf_counter() - started
        receiver.arrivals.clear()
        channel = delivery.webhook_channel("bench", receiver.url, secret, timeout=10)
        started = perf_counter()
        done = delivery.deliver_until_idle(db, [channel], POLICY)
        seconds = perf_counter() - started
        assert done.delivered == {"webhook:bench": len(payloads)}, done
        assert len(receiver.arrivals) == len(payloads)
    finally:
        receiver.close()
    report.add(Figure("erp", f"{backend}: webhook, {len(payloads):,} events",
                      _rate(len(payloads), seconds), baseline=f"same POSTs without the "
                      f"database {_rate(len(payloads), baseline)}",
                      ratio=f"{baseline / seconds:.2f}",
                      data={"events": len(payloads), "seconds": seconds,
                            "baseline_seconds": baseline}))


def _percentiles(latencies_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies_ms)
    return (statistics.median(ordered),
            ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])


def _decide(db: Database, lot_id: int) -> str:
    """One decision's outbox event, written and committed as a unit of work does."""
    with db.unit_of_work() as session:
        return write_event(session, "lot.status_changed", session.get(Lot, lot_id),
                           actor="system", previous_status="quarantine").event_id


def _wait_for_arrivals(receiver: _Receiver, event_ids, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not receiver.arrivals.keys() >= set(event_ids):
        assert time.monotonic() < deadline, "events did not arrive"
        time.sleep(0.001)


def _poll_latency(db: Database, lot_id: int, samples: int,
                  poll_seconds: float) -> list[float]:
    """The baseline: decisions committed at random moments while a loop delivers every
    ``poll_seconds`` and nothing wakes it (`qms jobs` before the wake-up)."""
    receiver, secret = _Receiver(), webhook.new_secret()
    channel = delivery.webhook_channel("latency", receiver.url, secret, timeout=10)
    delivery.deliver_until_idle(db, [channel], POLICY)  # the backlog of the earlier cases
    stop = threading.Event()

    def scheduler() -> None:
        while not stop.wait(poll_seconds):
            delivery.deliver_pass(db, [channel], POLICY)
    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    committed: dict[str, float] = {}
    rng = random.Random(5)
    try:
        for _ in range(samples):
            time.sleep(rng.uniform(0, poll_seconds))
            event_id = _decide(db, lot_id)
            committed[event_id] = time.monotonic()
        _wait_for_arrivals(receiver, committed, 4 * poll_seconds + 10)
    finally:
        stop.set()
        thread.join()
        receiver.close()
    return [1000 * (receiver.arrivals[e] - t) for e, t in committed.items()]


def _scheduler_process(url: str, options: dict, instance: str, receiver_url: str, secret: str,
                       poll_seconds: float, ready, stop) -> None:
    """A scheduler process as `qms jobs` runs delivery: the same job, wake-up listener and
    delivery lock (qms.erp.wake.schedule_delivery), without the other jobs."""
    from apscheduler.schedulers.background import BackgroundScheduler

    engine = make_engine(url, **options) if url.startswith("sqlite") else make_engine(url)
    db, folder = Database(engine), Path(instance)
    channel = delivery.webhook_channel("woken", receiver_url, secret, timeout=10)

    def deliver_pass() -> None:
        with delivery.delivery_lock(folder):
            delivery.deliver_pass(db, [channel], POLICY)
    scheduler = BackgroundScheduler(timezone="UTC")
    listener = wake.schedule_delivery(scheduler, db=db, instance=folder,
                                      deliver_pass=deliver_pass, poll_seconds=poll_seconds)
    scheduler.start()
    try:
        if listener.ready.wait(60):
            ready.set()
        stop.wait()
    finally:
        scheduler.shutdown()
        engine.dispose()


def _woken_latency(db: Database, url: str, options: dict, lot_id: int, samples: int,
                   poll_seconds: float) -> list[float]:
    """Decisions committed one at a time, at random moments, while a scheduler process
    polls every ``poll_seconds`` and is woken by each commit."""
    receiver, secret = _Receiver(), webhook.new_secret()
    # the backlog of the earlier cases, on the channel the scheduler process will deliver
    delivery.deliver_until_idle(db, [delivery.webhook_channel("woken", receiver.url, secret,
                                                              timeout=10)], POLICY)
    instance = tempfile.mkdtemp(prefix="qms-bench-")  # short: a socket path has 107 bytes
    wake.wake_after_commit(db, Path(instance))
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=_scheduler_process, args=(
        url, options, instance, receiver.url, secret, poll_seconds, ready, stop))
    process.start()
    latencies = []
    rng = random.Random(7)
    try:
        assert ready.wait(60), "the scheduler process did not start listening"
        for _ in range(samples):
            time.sleep(rng.uniform(0, 0.1))
            event_id = _decide(db, lot_id)
            committed = time.monotonic()
            _wait_for_arrivals(receiver, [event_id], 4 * poll_seconds + 10)
            latencies.append(1000 * (receiver.arrivals[event_id] - committed))
    finally:
        stop.set()
        process.join(30)
        receiver.close()
        shutil.rmtree(instance, ignore_errors=True)
    return latencies


def _latency(report: Report, backend: str, db: Database, url: str, options: dict,
             sizes: ErpSizes, poll_seconds: float) -> None:
    """Commit -> arrival at the receiver, woken by the commit, against the poll alone."""
    with db.reading() as session:
        lot_id = session.scalar(select(Lot.id))
    polled = _percentiles(_poll_latency(db, lot_id, sizes.latency_samples, poll_seconds))
    woken = _percentiles(_woken_latency(db, url, options, lot_id, sizes.wake_samples,
                                        poll_seconds))
    report.add(Figure("erp", f"{backend}: decision commit -> webhook received, woken by the "
                      f"commit ({sizes.wake_samples} decisions; poll every {poll_seconds:g} s "
                      "as the safety net)",
                      f"p50 {woken[0]:,.0f} ms / p95 {woken[1]:,.0f} ms",
                      baseline=f"poll only ({sizes.latency_samples} decisions): p50 "
                      f"{polled[0]:,.0f} ms / p95 {polled[1]:,.0f} ms",
                      ratio=f"{polled[1] / woken[1]:.1f}", target="p95 < 250 ms",
                      met=woken[1] < 250,
                      data={"p50_ms": woken[0], "p95_ms": woken[1],
                            "samples": sizes.wake_samples, "poll_p50_ms": polled[0],
                            "poll_p95_ms": polled[1], "poll_samples": sizes.latency_samples,
                            "poll_seconds": poll_seconds}))


def _master_lot(db: Database) -> None:
    with db.unit_of_work() as session:
        material = Material(number="RM-API", state="active", version=1, created_at=utcnow(),
                            created_by="bench", updated_at=utcnow(), updated_by="bench",
                            name="Paracetamol", kind="raw", unit="kg", shelf_life_days=365,
                            description="")
        session.add(material)
        session.flush()
        session.add(Lot(number="L-LATENCY", state="released", version=1, created_at=utcnow(),
                        created_by="bench", updated_at=utcnow(), updated_by="bench",
                        material_id=material.id, origin="produced", quantity=Decimal("25"),
                        unit="kg", expires_on=date(2029, 12, 31)))


def run_backend(report: Report, scratch, options: dict, sizes: ErpSizes,
                poll_seconds: float) -> None:
    url = scratch.new_database("erp")
    engine = make_engine(url, **options) if url.startswith("sqlite") else make_engine(url)
    db = Database(engine)
    try:
        payloads = _payloads(sizes.events, sizes.events_per_lot)
        _fill(db, payloads)
        _file_drop(report, scratch.backend, db, payloads)
        _webhook(report, scratch.backend, db, payloads)
        _master_lot(db)
        _latency(report, scratch.backend, db, url, options, sizes, poll_seconds)
    finally:
        engine.dispose()


def run(report: Report, scratches: list, options: dict, settings: dict, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    report.sizes["erp"] = {"events": sizes.events, "events_per_lot": sizes.events_per_lot,
                           "latency_samples": sizes.latency_samples,
                           "wake_samples": sizes.wake_samples}
    for scratch in scratches:
        run_backend(report, scratch, options, sizes, settings["ERP_POLL_SECONDS"])
