"""Fixtures of the audit tests: a fresh database per test on every backend.

SQLite always (a temporary file through qms.db.make_engine: WAL, BEGIN IMMEDIATE writers);
PostgreSQL when QMS_TEST_POSTGRES_URL names a server (a uniquely named database created for
the test and dropped after it). The schema is what the application's migration builds:
audit.schema.metadata, install_guards, initialize_head (plus a small item table).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.checkpoints import key_id, load_or_create_signing_key
from audit_test_support import AUDIT_BACKENDS, create_schema, fresh_postgres_database
from qms.db import Database, make_engine


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


