"""The CAPA table, its actions, and the registration as a controlled record type.

A CAPA names where it came from (a deviation, by its number; an audit, a
complaint or anything else, by a free reference), the person who owns it, the actions that
implement it (child rows, each a new CAPA version when added or completed) and the due date
of its effectiveness check. The effectiveness result is a workflow transition: "verify_effective"
signed as *verified*, or "record_ineffective" back to implementation, each with its note as the
transition's reason.
"""
from __future__ import annotations

import enum
import json
from datetime import date, datetime

from sqlalchemy import (CheckConstraint, Date, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, select)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from qms.db import Base, UTCDateTime, utcnow
from qms.records.models import (RecordType, RecordVersion, VersionedRecord, content_value,
                               register_record_type)


class CapaSource(str, enum.Enum):
    DEVIATION = "deviation"
    AUDIT = "audit"
    COMPLAINT = "complaint"
    OTHER = "other"


class Capa(VersionedRecord, Base):
    __tablename__ = "capas"
    __table_args__ = (
        CheckConstraint("source IN ('deviation', 'audit', 'complaint', 'other')",
                        name="ck_capas_source"),
        # a deviation's CAPAs: source and reference are fixed at creation, and the
        # reference of a deviation CAPA is checked to name an existing deviation
        Index("ix_capas_source_reference", "source", "source_reference"),
    )

    source: Mapped[str] = mapped_column(String(20))
    # the deviation number when source = deviation; else the audit / complaint reference
    source_reference: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    problem_statement: Mapped[str] = mapped_column(Text)
    root_cause: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(150), index=True)  # a username
    effectiveness_due_on: Mapped[date | None] = mapped_column(Date)
    # the effectiveness due date the overdue job already reported (one event per due date)
    effectiveness_overdue_reported_for: Mapped[date | None] = mapped_column(Date)

    actions: Mapped[list[CapaAction]] = relationship(
        back_populates="capa", lazy="selectin", order_by="CapaAction.position")


class CapaAction(Base):
    """One action of a CAPA, numbered 1, 2, ... within it. Added and completed through
    qms.capa.service, each time with a new CAPA version; never removed."""

    __tablename__ = "capa_actions"
    __table_args__ = (
        UniqueConstraint("capa_id", "position", name="uq_capa_actions_position"),
        # the overdue job scans open actions by due date
        Index("ix_capa_actions_due_open", "due_on", "completed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    capa_id: Mapped[int] = mapped_column(ForeignKey("capas.id"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(150))
    due_on: Mapped[date] = mapped_column(Date)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    added_by: Mapped[str] = mapped_column(String(150))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(150))
    evidence: Mapped[str | None] = mapped_column(Text)
    # the day the overdue job reported it (once), not part of the signed content
    overdue_reported_on: Mapped[date | None] = mapped_column(Date)

    capa: Mapped[Capa] = relationship(back_populates="actions")


CONTENT_FIELDS = ("source", "source_reference", "title", "problem_statement", "root_cause",
                  "owner", "effectiveness_due_on")
# source and reference are fixed at creation: the deviation link is what closure checks
EDITABLE_FIELDS = frozenset({"title", "problem_statement", "root_cause", "owner",
                             "effectiveness_due_on"})
ACTION_FIELDS = ("description", "owner", "due_on", "completed_at", "completed_by", "evidence")


def action_content(capa: Capa) -> dict:
    """The actions as part of the CAPA's signed content."""
    return {"actions": [{"n": action.position,
                         **{name: content_value(getattr(action, name))
                            for name in ACTION_FIELDS}} for action in capa.actions]}


def capa_owners(capa: Capa) -> set[str]:
    """Everyone who owns or owned the CAPA's work, none of whom may close it: the owner, every
    earlier owner (the owner can be changed while open or implementing; each stored version
    names the owner of its time), every action owner and whoever completed an action."""
    return ({capa.owner} | _earlier_owners(capa)
            | {action.owner for action in capa.actions}
            | {action.completed_by for action in capa.actions if action.completed_by})


def _earlier_owners(capa: Capa) -> set[str]:
    session = object_session(capa)
    if session is None or capa.number is None:
        return set()
    contents = session.scalars(select(RecordVersion.content).where(
        RecordVersion.record_type == capa.record_type, RecordVersion.record_id == capa.number))
    return {owner for owner in (json.loads(content).get("owner") for content in contents)
            if owner}


def capa_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a CAPA keeps, whatever path wrote it."""
    problems: dict[str, list[str]] = {}
    for name in ("title", "problem_statement", "source_reference", "owner"):
        if not (content.get(name) or "").strip():
            problems[name] = [f"a CAPA needs {name.replace('_', ' ')}"]
    if content.get("source") not in {s.value for s in CapaSource}:
        problems["source"] = [f"one of {', '.join(s.value for s in CapaSource)}"]
    return problems


def _before_transition(*args) -> None:
    from qms.capa.service import before_capa_transition  # the service imports us
    before_capa_transition(*args)


CAPAS = register_record_type(RecordType(
    name="capa", model=Capa, collection="capas", content_fields=CONTENT_FIELDS,
    editable_fields=EDITABLE_FIELDS, extra_content=action_content, check_content=capa_problems,
    before_transition=_before_transition, owners=capa_owners,
    # planning an action and completing one with its evidence are the CAPA's content
    content_revisions=frozenset({"add_action", "complete_action"})))
