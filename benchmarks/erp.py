"""ERP delivery (qms.erp.delivery): 10,000 events by file drop and by webhook, against the
same work without the database (the same atomic file writes; the same signed POSTs to the
same receiver), and the latency from a decision's commit to its arrival at a webhook
receiver while a scheduler-like loop polls every ``[erp] poll_seconds``.

The outbox rows are written in bulk below the services (the benchmark is about delivery);
the latency samples go through ``write_event`` in a unit of work, as a decision does.
"""
from __future__ import annotations

import json
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
from qms.erp import delivery, webhook
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
    latency_samples: int


FULL = ErpSizes(events=10_000, events_per_lot=5, latency_samples=40)
QUICK = ErpSizes(events=500, events_per_lot=5, latency_samples=8)


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


def _latency(report: Report, backend: str, db: Database, samples: int,
             poll_seconds: float) -> None:
    """Decisions committed at random moments while a loop delivers every ``poll_seconds``,
    as `qms jobs` does; commit -> arrival at the receiver."""
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
        with db.unit_of_work() as session:
            lot_id = session.scalar(select(Lot.id))
        for _ in range(samples):
            time.sleep(rng.uniform(0, poll_seconds))
            with db.unit_of_work() as session:
                event = write_event(session, "lot.status_changed", session.get(Lot, lot_id),
                                    actor="system", previous_status="quarantine")
            committed[event.event_id] = time.monotonic()
        deadline = time.monotonic() + 4 * poll_seconds + 10
        while len(receiver.arrivals.keys() & committed.keys()) < samples:
            assert time.monotonic() < deadline, "events did not arrive"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        receiver.close()
    latencies = sorted(1000 * (receiver.arrivals[e] - t) for e, t in committed.items())
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    report.add(Figure("erp", f"{backend}: decision commit -> webhook received "
                      f"({samples} decisions, poll every {poll_seconds:g} s)",
                      f"p50 {p50:,.0f} ms / p95 {p95:,.0f} ms",
                      baseline=f"poll interval {poll_seconds * 1000:,.0f} ms",
                      target="a few seconds at most", met=p95 < 5000,
                      data={"p50_ms": p50, "p95_ms": p95, "samples": samples}))


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
        _latency(report, scratch.backend, db, sizes.latency_samples, poll_seconds)
    finally:
        engine.dispose()


def run(report: Report, scratches: list, options: dict, settings: dict, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    report.sizes["erp"] = {"events": sizes.events, "events_per_lot": sizes.events_per_lot,
                           "latency_samples": sizes.latency_samples}
    for scratch in scratches:
        run_backend(report, scratch, options, sizes, settings["ERP_POLL_SECONDS"])
