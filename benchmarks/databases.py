"""Scratch databases for the benchmarks: SQLite files under benchmarks/results/ and
PostgreSQL databases named ``qms_bench_*``, all dropped again at the end of the run.

Every benchmark case gets a fresh database cloned from a template that the real Alembic
migrations created once per run (SQLite: a file copy; PostgreSQL: CREATE DATABASE ...
TEMPLATE), so each case starts from the same empty chain and pays nothing for migrating.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from benchmarks.records import bench_metadata
from benchmarks.report import RESULTS_DIR
from qms import migrations
from qms.db import make_engine

POSTGRES_URL_VARIABLE = "QMS_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME_PREFIX = "qms_bench_"


def engine_options(settings: dict) -> dict:
    """make_engine() arguments of the production configuration (picklable for workers)."""
    return {"busy_timeout_ms": settings["DATABASE_SQLITE_BUSY_TIMEOUT_MS"],
            "synchronous": settings["DATABASE_SQLITE_SYNCHRONOUS"]}


def create_schema(engine: Engine) -> None:
    """The application schema at Alembic head (audit tables, guards, head row) plus the
    benchmark's own table."""
    migrations.upgrade(engine)
    bench_metadata.create_all(engine)


def run_id() -> str:
    return f"{os.getpid()}{secrets.token_hex(3)}"


class SqliteScratch:
    """Fresh SQLite files, each a copy of one migrated template."""

    backend = "SQLite"

    def __init__(self, run: str, options: dict):
        self.folder = RESULTS_DIR / f"scratch-{run}"
        self.options = options
        self._template: Path | None = None

    def new_database(self, label: str) -> str:
        if self._template is None:
            self._template = self._migrated_template()
        target = self.folder / f"{label}.sqlite3"
        shutil.copyfile(self._template, target)
        return f"sqlite:///{target}"

    def _migrated_template(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "template.sqlite3"
        engine = make_engine(f"sqlite:///{path}", **self.options)
        create_schema(engine)
        # closing the last connection checkpoints the WAL into the main file we copy
        engine.dispose()
        return path

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresScratch:
    """Fresh PostgreSQL databases, each created from one migrated template database."""

    backend = "PostgreSQL"

    def __init__(self, run: str, server_url: str):
        self.run = run
        self.server_url = make_url(server_url)
        self._admin = create_engine(_psycopg(server_url), isolation_level="AUTOCOMMIT")
        self._template: str | None = None
        self._created: list[str] = []

    def new_database(self, label: str) -> str:
        if self._template is None:
            self._template = self._migrated_template()
        return self._url(self._create(label, template=self._template))

    def _migrated_template(self) -> str:
        name = self._create("template")
        engine = make_engine(self._url(name))
        create_schema(engine)
        # CREATE DATABASE ... TEMPLATE refuses while anyone is connected to the template
        engine.dispose()
        return name

    def _create(self, label: str, template: str | None = None) -> str:
        name = f"{NAME_PREFIX}{self.run}_{label}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self._created.append(name)
        return name

    def _url(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        with self._admin.connect() as connection:
            for name in reversed(self._created):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL


def postgres_unreachable(server_url: str) -> str | None:
    """Why PostgreSQL cannot be used for the benchmark, or None when it can."""
    engine = create_engine(_psycopg(server_url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    finally:
        engine.dispose()


def postgres_version(server_url: str) -> str:
    engine = create_engine(_psycopg(server_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


def _psycopg(url: str) -> str:
    # the same driver make_engine() uses for postgresql:// URLs
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url
