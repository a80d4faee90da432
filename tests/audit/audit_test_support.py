"""Helpers shared by the audit tests and their worker processes (audit_writer.py); kept out
of conftest.py, which tests cannot import by name once another conftest (tests/validation)
is loaded in the same run.

A small "record" table stands in for the application's tables: an audited write inserts one
item and appends one event naming it, in one transaction.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import Engine, String, create_engine, make_url, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from audit import trail
from audit.canonical import canonical_text
from audit.guards import drop_guards, install_guards
from audit.schema import GENESIS_HASH, initialize_head, metadata
from qms.db import Database

ROOT = Path(__file__).resolve().parents[2]
ITEM_ACTION = "test.item.created"
SITE = "site-test-production"  # the site id the tests' checkpoints name


class ItemBase(DeclarativeBase):
    pass


class Item(ItemBase):
    __tablename__ = "audit_test_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


def create_schema(engine: Engine) -> None:
    """What the application's migration does for the audit tables, plus the item table."""
    with engine.begin() as connection:
        metadata.create_all(connection)
        ItemBase.metadata.create_all(connection)
        install_guards(connection)
        initialize_head(connection)


def audited_write(database: Database, name: str, actor: str = "tester") -> int:
    """One transaction: an item row and its audit event. Returns the committed item id."""
    with database.unit_of_work() as session:
        item = Item(name=name)
        session.add(item)
        session.flush()
        trail.append(session, actor=actor, action=ITEM_ACTION, data={"name": name},
                     entity=("item", item.id))
    return item.id


def append_events(database: Database, count: int, actor: str = "alice") -> list[trail.Event]:
    """``count`` events, one transaction each, with varied optional fields."""
    events = []
    for number in range(count):
        with database.unit_of_work() as session:
            events.append(trail.append(
                session, actor=actor, action="deviation.record.updated",
                data={"version": number + 1, "before": {"title": f"t{number}"},
                      "after": {"title": f"t{number + 1}", "qty": "12.30"}},
                entity=("deviation", f"DEV-2026-{number:05d}") if number % 3 else None,
                reason=None if number % 2 else f"correction {number}"))
    return events


def tamper(engine: Engine, *statements: str) -> None:
    """Run SQL as an attacker who owns the database: guards dropped, changes committed."""
    with engine.begin() as connection:
        drop_guards(connection)
        for statement in statements:
            connection.execute(text(statement))


def rewrite_chain_from(engine: Engine, seq: int, new_actor: str) -> None:
    """Rewrite every event from ``seq`` on with a new actor and consistent hashes/links:
    the forgery that only checkpoints can reveal."""
    with engine.begin() as connection:
        drop_guards(connection)
        rows = connection.execute(text(
            "SELECT seq, canonical FROM audit_events ORDER BY seq")).all()
        prev = GENESIS_HASH
        for row_seq, canonical in rows:
            document = json.loads(canonical)
            if row_seq >= seq:
                document["actor"], document["prev_hash"] = new_actor, prev
                canonical = canonical_text(document)
                connection.execute(text(
                    "UPDATE audit_events SET canonical = :c, hash = :h, prev_hash = :p, "
                    "actor = :a WHERE seq = :s"),
                    {"c": canonical, "h": sha256(canonical.encode()).hexdigest(), "p": prev,
                     "a": new_actor, "s": row_seq})
            prev = sha256(canonical.encode()).hexdigest()
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


def rewrite_event_text(engine: Engine, seq: int, new_text: str) -> None:
    """Store ``new_text`` as event ``seq``'s canonical text with a matching hash, and relink
    every later event and the head: a forgery consistent in hashes, links and columns, that
    only the canonical-form check can reveal."""
    with engine.begin() as connection:
        drop_guards(connection)
        rows = connection.execute(text(
            "SELECT seq, canonical FROM audit_events WHERE seq >= :s ORDER BY seq"),
            {"s": seq}).all()
        prev = None
        for row_seq, canonical in rows:
            if row_seq == seq:
                canonical = new_text
            else:
                document = json.loads(canonical)
                document["prev_hash"] = prev
                canonical = canonical_text(document)
                connection.execute(text("UPDATE audit_events SET prev_hash = :p WHERE seq = :s"),
                                   {"p": prev, "s": row_seq})
            digest = sha256(canonical.encode()).hexdigest()
            connection.execute(text("UPDATE audit_events SET canonical = :c, hash = :h "
                                    "WHERE seq = :s"), {"c": canonical, "h": digest, "s": row_seq})
            prev = digest
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


def run_python(*args: str, cwd: Path = ROOT, python_options: tuple[str, ...] = (),
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python [options] args`` with the repository importable; capture text output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *python_options, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


POSTGRES_URL = os.environ.get("QMS_TEST_POSTGRES_URL", "")
AUDIT_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="QMS_TEST_POSTGRES_URL is not set"))]


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """URL of a new, empty database on the QMS_TEST_POSTGRES_URL server; dropped after."""
    server = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(drivername="postgresql", database=name).render_as_string(
                hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def as_a_forger() -> Iterator[None]:
    """write_checkpoint as a copy in a forger's hands signs: without the refusal of a key
    the chain has retired (a forger writes rows directly; the verifiers must catch it)."""
    with mock.patch("audit.checkpoints._refuse_retired", return_value=None):
        yield
