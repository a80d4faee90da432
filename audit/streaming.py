"""Streaming large result sets as plain tuples, bypassing per-row SQLAlchemy objects.

Verification and export read every event once; at a million events the cost of building a
Row object per event, or of holding all rows in memory, would dominate.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

from sqlalchemy import Connection

from audit.schema import UnsupportedDatabase

_cursor_names = itertools.count(1)

# SQL expression of the canonical column as its UTF-8 bytes: hashing needs bytes, and
# fetching them directly saves a decode and a re-encode of every event.
CANONICAL_BYTES_SQL = {"sqlite": "CAST(canonical AS BLOB)",
                       "postgresql": "convert_to(canonical, 'UTF8')"}


def canonical_bytes_sql(connection: Connection) -> str:
    """The expression above for this connection, checked to really yield UTF-8."""
    if connection.dialect.name == "sqlite":
        encoding = connection.exec_driver_sql("PRAGMA encoding").scalar_one()
        if encoding != "UTF-8":  # CAST AS BLOB returns the database's own text encoding
            raise UnsupportedDatabase(f"SQLite database encoding {encoding} is not UTF-8")
    try:
        return CANONICAL_BYTES_SQL[connection.dialect.name]
    except KeyError:
        raise UnsupportedDatabase(f"dialect {connection.dialect.name!r}") from None


def stream_rows(connection: Connection, sql: str, chunk_rows: int = 10000
                ) -> Iterator[list[tuple]]:
    """Yield the rows of ``sql`` in lists of at most ``chunk_rows`` plain tuples.

    Runs inside the connection's transaction (begun here if needed), so it sees the same
    snapshot as the caller's other reads. PostgreSQL uses a named server-side cursor,
    SQLite steps lazily by itself. ``sql`` goes to the driver verbatim: no parameters, so
    callers may only format integers into it. Close the generator to release the cursor.
    """
    if not connection.in_transaction():
        connection.begin()
    if connection.dialect.name == "postgresql":
        name = f"audit_stream_{next(_cursor_names)}"
        # binary: bytea arrives as raw bytes instead of hex text to decode
        cursor = connection.connection.driver_connection.cursor(name=name, binary=True)
    else:
        cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(chunk_rows):
            yield rows
    finally:
        cursor.close()
