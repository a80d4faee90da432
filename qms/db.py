"""Database engines and the unit of work.

The one rule for writes (DESIGN.md): services take a session and flush; exactly one place per
request / CLI command / job commits. SQLite write transactions start with ``BEGIN IMMEDIATE``
so that writers queue on the database lock up front instead of failing to upgrade a read
lock half-way through; for that, pysqlite's own transaction handling is switched off and
SQLAlchemy emits BEGIN itself.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Connection, DateTime, Engine, String, TypeDecorator, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# execution option that marks a connection as a writer (SQLite: BEGIN IMMEDIATE)
WRITE_OPTION = "qms_write"


class Base(DeclarativeBase):
    """Declarative base of every qms table (the audit tables live in audit.schema)."""


def make_engine(url: str, *, busy_timeout_ms: int = 30000, synchronous: str = "FULL") -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL with the transaction rules applied."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, busy_timeout_ms, synchronous)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, synchronous: str) -> None:
    if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValueError(f"unsupported SQLite synchronous mode {synchronous!r}")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # autocommit mode at the driver level: SQLAlchemy's "begin" hook below emits BEGIN
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # FULL: an acknowledged commit survives a power cut, not only a process crash
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        # REPLACE deletes fire delete triggers only with recursive triggers on (guard rail)
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        writer = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class Database:
    """Engine plus session factories for readers and writers."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._reader = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(engine.execution_options(**{WRITE_OPTION: True}),
                                    expire_on_commit=False)

    def listen(self, name: str, listener: Callable[..., None]) -> None:
        """Attach a SessionEvents listener (``after_commit``, ...) to every session of this
        database, for work that may only follow a commit."""
        for factory in (self._reader, self._writer):
            event.listen(factory, name, listener)

    def session(self, *, write: bool) -> Session:
        return (self._writer if write else self._reader)()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A write session that commits once at the end, or rolls back on any exception."""
        with self.session(write=True) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.session(write=False) as session:
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def reading_beside(session: Session) -> Iterator[Session]:
    """A short read-only session on ``session``'s database but outside its transaction, for
    slow work that must not hold the write lock: a SQLite reader takes no write lock (WAL)
    and a PostgreSQL reader no row lock. Whatever it reads may change before the writer
    locks; the writer re-reads what it relies on. A session bound to a connection (already
    inside a transaction) reads through that session instead."""
    bind = session.get_bind()
    if isinstance(bind, Connection):
        yield session
        return
    with Session(bind.execution_options(**{WRITE_OPTION: False})) as reader:
        try:
            yield reader
        finally:
            reader.rollback()


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite has no time zone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware UTC datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class ExactDecimal(TypeDecorator):
    """Quantities and measured values, exact: stored as their decimal text (``"12.30"``,
    never a float, never an exponent), so both databases return what was written, trailing
    zeros included, and the canonical JSON of a record is the same on either."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"an exact decimal is required, not {value!r}")
        return format(value, "f")

    def process_result_value(self, value: str | None, dialect):
        return None if value is None else Decimal(value)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
