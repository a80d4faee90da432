"""Fixtures of the audit tests: a fresh database per test on every backend.

SQLite always (a temporary file through qms.db.make_engine: WAL, BEGIN IMMEDIATE writers);
PostgreSQL when QMS_TEST_POSTGRES_URL names a server (a uniquely named database created for
the test and dropped after it). The schema is what the application's migration builds:
audit.schema.metadata, install_guards, initialize_head (plus a small item table).
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from audit.checkpoints import key_id, load_or_create_signing_key
from audit_test_support import create_schema
from qms.db import Database, make_engine

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(params=AUDIT_BACKENDS)
def audit_url(request, tmp_path) -> Iterator[str]:
    """A database URL with the audit schema, guards and head row in place."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
        _create(url)
        yield url
        return
    with fresh_postgres_database() as url:
        _create(url)
        yield url


def _create(url: str) -> None:
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()


@pytest.fixture
def audit_db(audit_url) -> Iterator[Database]:
    database = Database(make_engine(audit_url))
    yield database
    database.dispose()


@pytest.fixture
def signing_key(tmp_path):
    return load_or_create_signing_key(tmp_path / "keys" / "audit-signing.pem")


@pytest.fixture
def public_keys(signing_key) -> dict:
    public = signing_key.public_key()
    return {key_id(public): public}


@pytest.fixture
def checkpoint_file(tmp_path) -> Path:
    return tmp_path / "instance" / "audit-checkpoints.jsonl"


def run_python(*args: str, cwd: Path = ROOT, python_options: tuple[str, ...] = (),
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python [options] args`` with the repository importable; capture text output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *python_options, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
