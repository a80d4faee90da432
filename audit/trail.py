"""Appending to the audit trail and reading it back.

``append`` is called inside the caller's write transaction, beside the record change it
documents, and never commits: the change and its event are committed together or not at all
(DESIGN.md, "The one rule for writes").
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, NamedTuple

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from audit.canonical import (canonical_text, canonical_value, normalize_text, parse_timestamp,
                             utc_timestamp)
from audit.schema import audit_events, audit_head

# <area>.<subject>.<verb> (or DESIGN.md's two-part signature.applied): lowercase dotted tags
ACTION_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")

# column widths of audit.schema; checked here so SQLite and PostgreSQL refuse alike
_MAX_LENGTH = {"actor": 150, "action": 100, "entity type": 64, "entity id": 100}


class AuditError(ValueError):
    """An event cannot be appended as requested."""


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event as stored: the queryable fields, the data and the hashed text."""
    seq: int
    at: str
    actor: str
    action: str
    entity_type: str | None
    entity_id: str | None
    reason: str | None
    data: Any
    prev_hash: str
    hash: str
    canonical: str

    @property
    def at_datetime(self) -> datetime:
        return parse_timestamp(self.at)


@dataclass(frozen=True, slots=True)
class Head:
    """The chain head: the last event's seq and hash (0 and 64 zeros when empty)."""
    seq: int
    hash: str


_LOCK_HEAD = (select(audit_head.c.seq, audit_head.c.hash)
              .where(audit_head.c.id == 1).with_for_update())
_READ_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_INSERT_EVENT = audit_events.insert()
_ADVANCE_HEAD = audit_head.update().where(audit_head.c.id == 1)
_APPENDED_IN = "audit.appended_in_transaction"


def connection_of(target: Session | Connection) -> Connection:
    """The Connection of a Session's current transaction, or the Connection itself."""
    return target.connection() if isinstance(target, Session) else target


class _Fields(NamedTuple):
    """The validated, NFC-normalised queryable fields of a new event."""
    actor: str
    action: str
    entity_type: str | None
    entity_id: str | None
    reason: str | None

    def document(self, seq: int, at: str, data: dict, prev_hash: str) -> dict:
        entity = (None if self.entity_type is None
                  else {"id": self.entity_id, "type": self.entity_type})
        return {"action": self.action, "actor": self.actor, "at": at, "data": data,
                "entity": entity, "prev_hash": prev_hash, "reason": self.reason, "seq": seq}


def append(target: Session | Connection, *, actor: str, action: str, data: dict,
           entity: tuple[str, str | int] | None = None, reason: str | None = None,
           at: datetime | None = None) -> Event:
    """Append one event in the caller's transaction and return it. Never commits.

    Takes the head lock (PostgreSQL ``SELECT ... FOR UPDATE``; on SQLite the caller's
    ``BEGIN IMMEDIATE`` already serialises writers), so seq is gapless: head.seq + 1. The
    statements run at once on the transaction's connection; nothing waits for a flush.
    ``data`` is a dict within the canonical limits (no floats). ``entity`` is
    ``(type, id)``; an int id is stored as its decimal string.
    """
    fields = _checked_fields(actor, action, entity, reason)
    if not isinstance(data, dict):
        raise AuditError("data must be a JSON object (a dict)")
    data = canonical_value(data)
    stamp = utc_timestamp(at if at is not None else datetime.now(UTC))
    connection = connection_of(target)
    top = lock_head(connection)
    seq, prev_hash = top.seq + 1, top.hash
    canonical = canonical_text(fields.document(seq, stamp, data, prev_hash))
    digest = sha256(canonical.encode("utf-8")).hexdigest()
    # the event first, then the head: the database's guards let an event in only as the
    # head's next one, and the head advance only to an event that exists (audit.guards)
    connection.execute(_INSERT_EVENT, {**fields._asdict(), "seq": seq, "at": stamp,
                                       "prev_hash": prev_hash, "hash": digest,
                                       "canonical": canonical})
    connection.execute(_ADVANCE_HEAD, {"seq": seq, "hash": digest})
    # remembered per transaction object; holding the reference keeps its id from reuse
    connection.info[_APPENDED_IN] = connection.get_transaction()
    return Event(seq, stamp, fields.actor, fields.action, fields.entity_type,
                 fields.entity_id, fields.reason, data, prev_hash, digest, canonical)


def lock_head(connection: Connection) -> Head:
    """Read the head under the writers' lock, held until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the one head row (the last event row would be
    wrong: two writers could both extend it). SQLite has no row locks; there the caller's
    ``BEGIN IMMEDIATE`` transaction already holds the database's single write lock.
    """
    seq, digest = connection.execute(_LOCK_HEAD).one()
    return Head(seq, digest)


def appended_in_transaction(connection: Connection) -> bool:
    """True when ``append`` ran in the connection's current transaction."""
    transaction = connection.get_transaction()
    return transaction is not None and connection.info.get(_APPENDED_IN) is transaction


def _checked_fields(actor, action, entity, reason) -> _Fields:
    """Validate and NFC-normalise the queryable fields, so columns equal the canonical text."""
    if not isinstance(actor, str) or not actor.strip():
        raise AuditError("actor must be a non-empty username (or 'system')")
    if not isinstance(action, str) or not ACTION_PATTERN.match(action):
        raise AuditError(f"action {action!r} is not a dotted tag like 'area.subject.verb'")
    if reason is not None and not isinstance(reason, str):
        raise AuditError("reason must be a string or None")
    actor = normalize_text(actor, "actor")
    action = normalize_text(action, "action")  # a plain str, also from a StrEnum member
    _check_length("actor", actor)
    _check_length("action", action)
    entity_type, entity_id = (None, None) if entity is None else _checked_entity(entity)
    return _Fields(actor, action, entity_type, entity_id,
                   None if reason is None else normalize_text(reason, "reason"))


def _checked_entity(entity) -> tuple[str, str]:
    try:
        entity_type, entity_id = entity
    except (TypeError, ValueError):
        raise AuditError("entity must be a (type, id) pair") from None
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        entity_id = str(int(entity_id))
    if not isinstance(entity_type, str) or not isinstance(entity_id, str) or not entity_type:
        raise AuditError("entity must be a (type, id) pair of strings")
    entity_type = normalize_text(entity_type, "entity type")
    entity_id = normalize_text(entity_id, "entity id")
    _check_length("entity type", entity_type)
    _check_length("entity id", entity_id)
    return entity_type, entity_id


def _check_length(name: str, value: str) -> None:
    if len(value) > _MAX_LENGTH[name]:
        raise AuditError(f"{name} longer than {_MAX_LENGTH[name]} characters")


def head(connection: Session | Connection) -> Head:
    """The current head as seen by this transaction (no lock)."""
    seq, digest = connection_of(connection).execute(_READ_HEAD).one()
    return Head(seq, digest)


_EVENT_COLUMNS = (audit_events.c.seq, audit_events.c.at, audit_events.c.actor,
                  audit_events.c.action, audit_events.c.entity_type,
                  audit_events.c.entity_id, audit_events.c.reason,
                  audit_events.c.prev_hash, audit_events.c.hash, audit_events.c.canonical)


def _event_from_row(row) -> Event:
    seq, at, actor, action, entity_type, entity_id, reason, prev_hash, digest, canonical = row
    data = json.loads(canonical)["data"]
    return Event(seq, at, actor, action, entity_type, entity_id, reason, data, prev_hash,
                 digest, canonical)


def iter_events(connection: Session | Connection, after_seq: int = 0,
                batch: int = 1000) -> Iterator[Event]:
    """Yield events with seq > after_seq in seq order, ``batch`` rows per query.

    Keyset pagination: memory stays bounded and no server-side cursor is held open.
    """
    connection = connection_of(connection)
    while True:
        rows = connection.execute(select(*_EVENT_COLUMNS).where(audit_events.c.seq > after_seq)
                                  .order_by(audit_events.c.seq).limit(batch)).all()
        for row in rows:
            yield _event_from_row(row)
        if len(rows) < batch:
            return
        after_seq = rows[-1][0]


def query_events(connection: Session | Connection, *, seq_from: int | None = None,
                 seq_to: int | None = None, entity_type: str | None = None,
                 entity_id: str | None = None, actor: str | None = None,
                 action: str | None = None, at_from: datetime | str | None = None,
                 at_to: datetime | str | None = None, limit: int = 100, offset: int = 0,
                 newest_first: bool = False) -> list[Event]:
    """Events matching every given filter, in seq order (or newest first).

    ``seq_from``/``seq_to`` and ``at_from`` are inclusive, ``at_to`` is exclusive.
    ``action`` matches the tag itself or any tag below it (``deviation`` matches
    ``deviation.record.created``).
    """
    c = audit_events.c
    conditions = _filters(seq_from=seq_from, seq_to=seq_to, entity_type=entity_type,
                          entity_id=entity_id, actor=actor, action=action, at_from=at_from,
                          at_to=at_to)
    order = c.seq.desc() if newest_first else c.seq
    query = (select(*_EVENT_COLUMNS).where(*conditions).order_by(order)
             .limit(limit).offset(offset))
    return [_event_from_row(row) for row in connection_of(connection).execute(query)]


def _filters(*, seq_from, seq_to, entity_type, entity_id, actor, action, at_from, at_to):
    c = audit_events.c
    conditions = []
    if seq_from is not None:
        conditions.append(c.seq >= seq_from)
    if seq_to is not None:
        conditions.append(c.seq <= seq_to)
    if entity_type is not None:
        conditions.append(c.entity_type == entity_type)
    if entity_id is not None:
        conditions.append(c.entity_id == str(entity_id))
    if actor is not None:
        conditions.append(c.actor == actor)
    if action is not None:
        conditions.append(or_(c.action == action,
                              c.action.startswith(f"{action}.", autoescape=True)))
    if at_from is not None:
        conditions.append(c.at >= _timestamp_bound(at_from))
    if at_to is not None:
        conditions.append(c.at < _timestamp_bound(at_to))
    return conditions


def _timestamp_bound(moment: datetime | str) -> str:
    # canonical timestamps are fixed-width UTC strings, so text order is time order
    if isinstance(moment, str):
        parse_timestamp(moment)
        return moment
    return utc_timestamp(moment)
