"""A large stored audit chain to time verification on, built once and cached by size.

Calling ``audit.trail.append`` a million times would take many minutes; instead the events
are made exactly as append makes them (the same document, audit.canonical, sha256 of the
previous hash) and inserted with executemany inside one transaction. The guard triggers are
installed after the load, and the head row is written directly at the last event: the
``audit_head_advance_only`` guard only lets the head move one event at a time, so it could
not be initialised and then jumped to the end.
"""
from __future__ import annotations

import base64
import os
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from itertools import islice
from pathlib import Path

from sqlalchemy import create_engine, event, insert, update

from audit.canonical import canonical_text, utc_timestamp
from audit.guards import drop_guards, install_guards
from audit.schema import GENESIS_HASH, audit_head, metadata
from benchmarks.records import decimal_text
from benchmarks.report import RESULTS_DIR
from qms.db import make_engine

BATCH = 50_000
# events hashed into the cache key; every kind of generated event occurs among them
_FINGERPRINT_EVENTS = 100
_START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
_COLUMNS = "seq, at, actor, action, entity_type, entity_id, reason, prev_hash, hash, canonical"
_INSERT = f"INSERT INTO audit_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_USERS = ("insp.mueller", "insp.weber", "qa.schmidt", "qa.huber", "prod.wagner", "system")
_RECORDS = ("deviation", "inspection", "capa", "change_control", "lot", "batch")


def cached_chain(events: int) -> Path:
    """Path of a SQLite database holding ``events`` chained events; built on first use.

    The cache is keyed by size and by a fingerprint of the first events' canonical bytes,
    so a change of the generator or of audit.canonical builds a new chain.
    """
    path = RESULTS_DIR / f"audit-chain-{events}-{generator_fingerprint()}.sqlite3"
    if not path.exists():
        print(f"  building a {events:,}-event chain (cached as {path.name}) ...", flush=True)
        for stale in RESULTS_DIR.glob(f"audit-chain-{events}-*.sqlite3*"):
            stale.unlink()  # chains of an older generator: about 1 GB per million events
        # per process: concurrent runs (e.g. two test sessions) must not share a half file
        partial = path.with_suffix(f".{os.getpid()}.partial")
        build_chain(partial, events)
        # only a complete build gets the cache name, so an interrupted run is not reused
        partial.replace(path)
    return path


def copy_chain(path: Path, url: str) -> None:
    """Copy the chain cached at ``path`` into the migrated, empty PostgreSQL database at
    ``url``: the events with COPY, the head row moved to the last one (guards are lifted
    for that and put back)."""
    engine = make_engine(url)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with engine.begin() as connection:
            drop_guards(connection)
            cursor = connection.connection.driver_connection.cursor()
            with cursor.copy(f"COPY audit_events ({_COLUMNS}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {_COLUMNS} FROM audit_events ORDER BY seq"):
                    copy.write_row(row)
            last_seq, last_hash = source.execute(
                "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
            connection.execute(update(audit_head).values(seq=last_seq, hash=last_hash))
            install_guards(connection)
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE audit_events")
    finally:
        source.close()
        engine.dispose()


def generator_fingerprint() -> str:
    canonical = "".join(row[9] for row in event_rows(_FINGERPRINT_EVENTS))
    return sha256(canonical.encode("utf-8")).hexdigest()[:12]


def build_chain(path: Path, events: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def unjournaled(dbapi_connection, _record):
        # a scratch file renamed into place only when complete needs no crash safety
        dbapi_connection.execute("PRAGMA journal_mode=OFF")
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            last_seq, last_hash = 0, GENESIS_HASH
            rows = event_rows(events)
            while batch := list(islice(rows, BATCH)):
                connection.exec_driver_sql(_INSERT, batch)
                last_seq, last_hash = batch[-1][0], batch[-1][8]
                if last_seq % 200_000 == 0:
                    print(f"    {last_seq:,} events", flush=True)
            connection.execute(insert(audit_head).values(id=1, seq=last_seq, hash=last_hash))
            install_guards(connection)
    finally:
        engine.dispose()


def event_rows(count: int) -> Iterator[tuple]:
    """Rows of audit_events for seq 1..count, chained, the same on every run."""
    rng = random.Random("qms-bench-audit-chain")
    prev_hash = GENESIS_HASH
    for seq in range(1, count + 1):
        actor, action, entity, data, reason = _event_content(rng, seq)
        at = utc_timestamp(_START + timedelta(milliseconds=700 * seq))
        document = {"action": action, "actor": actor, "at": at, "data": data,
                    "entity": None if entity is None else {"id": entity[1], "type": entity[0]},
                    "prev_hash": prev_hash, "reason": reason, "seq": seq}
        canonical = canonical_text(document)
        digest = sha256(canonical.encode("utf-8")).hexdigest()
        entity_type, entity_id = entity or (None, None)
        yield (seq, at, actor, action, entity_type, entity_id, reason, prev_hash, digest,
               canonical)
        prev_hash = digest


def _event_content(rng: random.Random, seq: int) -> tuple:
    """(actor, action, entity, data, reason): a realistic mix of record changes, signatures
    and logins, as a busy site writes them."""
    actor = rng.choice(_USERS)
    record_type = rng.choice(_RECORDS)
    entity = (record_type, f"{record_type[:3].upper()}-2026-{rng.randint(1, 99999):05d}")
    kind = seq % 10
    if kind < 3:
        return actor, f"{record_type}.record.created", entity, _created(rng), None
    if kind < 7:
        return (actor, f"{record_type}.record.updated", entity, _updated(rng),
                "root cause analysis started per SOP-QA-014 §5.2")
    if kind < 9:
        return actor, "signature.applied", entity, _signature(rng, seq, actor), None
    login = {"ip": f"10.0.{seq % 256}.{rng.randint(2, 254)}"}
    return actor, "identity.login.succeeded", None, login, None


def _created(rng: random.Random) -> dict:
    return {"version": 1, "after": {"title": f"Out-of-spec assay on line L{rng.randint(1, 6)}",
                                    "severity": rng.choice(("minor", "major")),
                                    "quantity": decimal_text(rng.randint(1, 99999)),
                                    "unit": "kg", "state": "open"}}


def _updated(rng: random.Random) -> dict:
    return {"version": rng.randint(2, 9),
            "before": {"state": "open", "assignee": "qa.schmidt"},
            "after": {"state": "investigation", "assignee": "qa.huber"}}


def _signature(rng: random.Random, seq: int, actor: str) -> dict:
    return {"meaning": rng.choice(("reviewed", "approved", "released")),
            "record_version": rng.randint(1, 9),
            "content_hash": sha256(seq.to_bytes(8, "big")).hexdigest(),
            "key_id": sha256(actor.encode()).hexdigest()[:16],
            "signature": base64.b64encode(rng.randbytes(64)).decode("ascii")}
