"""Tables of the audit trail, on their own MetaData.

The application's Alembic migration creates these from ``metadata`` and then calls
``audit.guards.install_guards(connection)`` and ``initialize_head(connection)``. Column names
and meanings are part of the public format (docs/audit-trail-format.md).
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, CheckConstraint, Column, Connection, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint, insert, select)

GENESIS_HASH = "0" * 64

metadata = MetaData()

# On SQLite only a column declared exactly INTEGER PRIMARY KEY is the rowid itself: events
# are then stored in seq order and a full scan in seq order (verification, export) is a
# sequential read of the table instead of an index walk with one lookup per row.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

audit_events = Table(
    "audit_events", metadata,
    # assigned under the head lock as head.seq + 1, never from a database sequence (gapless)
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("at", String(27), nullable=False),
    Column("actor", String(150), nullable=False),
    Column("action", String(100), nullable=False),
    Column("entity_type", String(64), nullable=True),
    Column("entity_id", String(100), nullable=True),
    Column("reason", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # the canonical JSON of the event, verbatim: the hashed bytes are its UTF-8 encoding
    Column("canonical", Text, nullable=False),
    UniqueConstraint("hash", name="uq_audit_events_hash"),
    Index("ix_audit_events_entity", "entity_type", "entity_id"),
    Index("ix_audit_events_actor", "actor"),
    Index("ix_audit_events_action", "action"),
    Index("ix_audit_events_at", "at"),
)

# One row (id 1): the chain head. Writers lock it to serialise appends; it is the only
# audit table that is ever updated.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="ck_audit_head_single_row"),
)

# Signed statements "the chain had head (seq, hash) at time at". The id is only a row
# handle; checkpoints are ordered by seq.
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", String(27), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", Text, nullable=False),  # base64 of the 64-byte Ed25519 signature
    Column("canonical", Text, nullable=False),  # the signed payload, canonical JSON
    UniqueConstraint("seq", name="uq_audit_checkpoints_seq"),
)


def initialize_head(connection: Connection) -> None:
    """Insert the head row (seq 0, 64 zeros) unless it exists. Executes, never commits."""
    exists = connection.execute(select(audit_head.c.id).where(audit_head.c.id == 1)).first()
    if exists is None:
        connection.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS_HASH))


class UnsupportedDatabase(RuntimeError):
    """The audit trail supports SQLite and PostgreSQL only."""
