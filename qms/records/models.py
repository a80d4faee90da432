"""The versioned record base shared by every controlled record type, the version snapshots,
the gapless number counters, and the registry of record types.

A record row holds the current state; every change also writes an immutable
``record_versions`` row with the canonical JSON of the record's content and its sha256, which
is what electronic signatures link to (DESIGN.md "Electronic signatures").
"""
from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.canonical import canonical_bytes, utc_timestamp
from qms.db import Base, UTCDateTime

NUMBER_DIGITS = 5
# the record core's own content changes: whoever takes one is an author of the record
CREATE, UPDATE = "create", "update"


class VersionedRecord:
    """Columns every controlled record table has. Mix into a mapped class:
    ``class Document(VersionedRecord, Base)``. (sort_order puts them before the type's own.)"""

    record_type: ClassVar[str]

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)
    # PREFIX-YYYY-NNNNN, used in URLs, the API and the PDF
    number: Mapped[str] = mapped_column(String(40), unique=True, sort_order=-1)
    state: Mapped[str] = mapped_column(String(40), index=True, sort_order=-1)
    version: Mapped[int] = mapped_column(Integer, sort_order=-1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, sort_order=-1)
    created_by: Mapped[str] = mapped_column(String(150), sort_order=-1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, sort_order=-1)
    updated_by: Mapped[str] = mapped_column(String(150), sort_order=-1)


class RecordVersion(Base):
    """One version of one record, never changed once written."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("record_type", "record_id", "version",
                                       name="uq_record_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(40))  # the record's number
    version: Mapped[int] = mapped_column(Integer)
    # "create", "update", the workflow action or the revision (RecordType.content_revisions,
    # decision_revisions) that made this version
    action: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(40))
    content: Mapped[str] = mapped_column(Text)  # canonical JSON of the record's own fields
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of content's UTF-8
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str | None] = mapped_column(Text)


class RecordNumber(Base):
    """Last number issued per prefix and year. Incremented inside the creating transaction,
    so a rolled-back creation gives its number back and the series has no gaps."""

    __tablename__ = "record_numbers"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)


def assign_number(session: Session, prefix: str, year: int) -> str:
    """The next ``PREFIX-YYYY-NNNNN`` in the session's transaction. The upsert locks the
    counter row until commit (PostgreSQL), and SQLite writers already hold BEGIN IMMEDIATE,
    so concurrent creators queue instead of sharing a number. Executes, never commits."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = RecordNumber.__table__
    statement = (dialect.insert(table).values(prefix=prefix, year=year, last_value=1)
                 .on_conflict_do_update(index_elements=[table.c.prefix, table.c.year],
                                        set_={"last_value": table.c.last_value + 1})
                 .returning(table.c.last_value))
    value = session.execute(statement).scalar_one()
    return f"{prefix}-{year:04d}-{value:0{NUMBER_DIGITS}d}"


@dataclass(frozen=True)
class RecordType:
    """How one kind of controlled record plugs into the generic record services and API.

    ``content_fields`` are the record's own fields, in the snapshot that signatures link to;
    ``editable_fields`` those a user may change (with a reason) in an editable state.
    """

    name: str
    model: type
    collection: str
    content_fields: tuple[str, ...]
    editable_fields: frozenset[str]
    # optional extra content, e.g. child rows, beside the plain fields
    extra_content: Callable[[Any], dict[str, Any]] | None = None
    # optional rules on proposed content: field -> problems (empty when acceptable)
    check_content: Callable[[dict[str, Any]], dict[str, list[str]]] | None = None
    # optional domain rules of a transition, called with (session, record, transition, actor,
    # reason) before anything is written: raise a DomainError to refuse (e.g. "closing needs
    # the linked CAPA"); and its consequences on other records, called after the record's new
    # version is stored (e.g. an incoming usage decision releases the lot). A consequence must
    # not change this record's own content: the signature covers the version it signed.
    before_transition: Callable[..., None] | None = None
    after_transition: Callable[..., None] | None = None
    # usernames the record names as owners, for the "not_owner" segregation rule
    owners: Callable[[Any], set[str]] | None = None
    # called whenever the record's state changes, by a transition or a revision, after the
    # new version is stored: (session, record, previous state, actor username, reason,
    # signature or None); e.g. a lot's status change queues an ERP event
    state_changed: Callable[..., None] | None = None
    # Authorship, declared once per record type (qms.records.service.authors_of). The
    # revisions (qms.records.service.revise_record) by which a person changes the record's
    # content make that person an author, as creating and editing it do: a consumption or
    # its reversal, lots a deviation names or no longer names, a CAPA action, implementation
    # notes, an inspection result. Decision revisions do not: consequences of a decision on
    # this or another record (a hold, the status a usage decision sets, approvals complete,
    # a plan superseded) and the record of the decision that a signature then attests. A
    # workflow transition never changes content (its signature covers what was there), so it
    # never makes an author. revise_record refuses an action declared as neither.
    content_revisions: frozenset[str] = frozenset()
    decision_revisions: frozenset[str] = frozenset()

    @property
    def authoring_actions(self) -> frozenset[str]:
        """The version actions whose takers are authors of a record of this type."""
        return frozenset({CREATE, UPDATE}) | self.content_revisions

    def problems(self, content: dict[str, Any]) -> dict[str, list[str]]:
        return self.check_content(content) if self.check_content is not None else {}


_RECORD_TYPES: dict[str, RecordType] = {}


def register_record_type(record_type: RecordType) -> RecordType:
    """Called once by each record type module at import."""
    existing = _RECORD_TYPES.get(record_type.name)
    if existing is not None and existing.model is not record_type.model:
        raise ValueError(f"record type {record_type.name!r} is registered twice")
    if not set(record_type.editable_fields) <= set(record_type.content_fields):
        raise ValueError(f"record type {record_type.name!r}: editable fields must be content")
    declared = record_type.content_revisions | record_type.decision_revisions
    if (record_type.content_revisions & record_type.decision_revisions
            or declared & {CREATE, UPDATE}):
        raise ValueError(f"record type {record_type.name!r}: a revision is either a content "
                         "change or a decision, and never create or update")
    record_type.model.record_type = record_type.name
    _RECORD_TYPES[record_type.name] = record_type
    return record_type


def registered_record_types() -> list[str]:
    return sorted(_RECORD_TYPES)


def record_type_of(name: str) -> RecordType:
    try:
        return _RECORD_TYPES[name]
    except KeyError:
        raise LookupError(f"no record type {name!r} is registered") from None


def all_record_types() -> Iterable[RecordType]:
    return [_RECORD_TYPES[name] for name in sorted(_RECORD_TYPES)]


def content_value(value: Any) -> Any:
    """A field value as it appears in canonical content: no floats, no datetimes."""
    if isinstance(value, enum.Enum):
        return content_value(value.value)
    if isinstance(value, datetime):
        return utc_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in record content; use Decimal")
    return value


def record_content(record_type: RecordType, record: Any) -> dict[str, Any]:
    """The record's own content, ready for canonical JSON."""
    content = {name: content_value(getattr(record, name)) for name in record_type.content_fields}
    if record_type.extra_content is not None:
        content.update(record_type.extra_content(record))
    return content


def content_digest(content: dict[str, Any]) -> tuple[str, str]:
    """(canonical JSON text, sha256 hex of its UTF-8 bytes)."""
    encoded = canonical_bytes(content)
    return encoded.decode("utf-8"), hashlib.sha256(encoded).hexdigest()
