"""The deviations table, the lots each deviation names, and the registration as a controlled
record type.

A deviation names lots (and batches, which count as the lot they produced: a batch and its
output lot share one number) through ``deviation_lots`` rows, indexed by lot so that "which
open deviations name these lots" (the holds, issue 4's release gate) is one index look-up.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String,
                        Text, UniqueConstraint, exists)
from sqlalchemy.orm import Mapped, mapped_column, relationship

import qms.capa.models  # noqa: F401  (maps Capa, which Deviation.capas names)
from qms.dates import today
from qms.db import Base, UTCDateTime, utcnow
from qms.materials.models import Lot
from qms.records.models import RecordType, VersionedRecord, register_record_type


class DeviationKind(str, enum.Enum):
    PLANNED = "planned"
    UNPLANNED = "unplanned"


class Severity(str, enum.Enum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class NamedAs(str, enum.Enum):
    """How the deviation named the lot: as a lot, or as the batch that produced it."""
    LOT = "lot"
    BATCH = "batch"


# a deviation in these states no longer holds the lots it names
FINISHED_STATES = ("closed", "cancelled")
OPEN_STATES = ("open", "in_investigation", "pending_closure")


class Deviation(VersionedRecord, Base):
    __tablename__ = "deviations"
    __table_args__ = (
        CheckConstraint("kind IN ('planned', 'unplanned')", name="ck_deviations_kind"),
        CheckConstraint("severity IN ('minor', 'major', 'critical')",
                        name="ck_deviations_severity"),
    )

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20), index=True)
    occurred_on: Mapped[date] = mapped_column(Date)
    investigation: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    impact_assessment: Mapped[str] = mapped_column(Text, default="")
    # None until the investigation decides; then whether closure needs a linked CAPA
    capa_required: Mapped[bool | None] = mapped_column(Boolean)

    lot_links: Mapped[list[DeviationLot]] = relationship(
        back_populates="deviation", lazy="selectin", order_by="DeviationLot.id")
    # the CAPAs raised from this deviation (read-only: a CAPA names its source deviation by
    # number, fixed at its creation); not part of the deviation's signed content
    capas: Mapped[list["Capa"]] = relationship(  # noqa: F821  (qms.capa.models)
        "Capa", primaryjoin="and_(Capa.source == 'deviation', "
                            "foreign(Capa.source_reference) == Deviation.number)",
        viewonly=True, order_by="Capa.number")

    @property
    def named_links(self) -> list[DeviationLot]:
        """The links to the lots the deviation names now (not removed)."""
        return [link for link in self.lot_links if link.removal is None]

    @property
    def affected_lots(self) -> list[dict[str, str]]:
        """Each lot named, how, and its current status (for the API)."""
        return [{"number": link.lot.number, "named_as": link.named_as, "status": link.lot.state}
                for link in self.named_links]

    @property
    def removed_lots(self) -> list[dict]:
        """Each lot named by mistake and removed, by whom, when and why (for the API)."""
        return [{"number": link.lot.number, "named_as": link.named_as,
                 "removed_by": link.removal.removed_by, "removed_at": link.removal.removed_at,
                 "reason": link.removal.reason}
                for link in self.lot_links if link.removal is not None]


class DeviationLot(Base):
    """One lot a deviation names. Rows are only ever added: a deviation that named a lot
    keeps naming it in its history, and the hold ends when the deviation ends, or when the
    lot is removed as named by mistake (a DeviationLotRemoval beside the row)."""

    __tablename__ = "deviation_lots"
    __table_args__ = (
        UniqueConstraint("deviation_id", "lot_id", name="uq_deviation_lots_lot"),
        # "open deviations naming these lots": from the lot to its deviations
        Index("ix_deviation_lots_lot_deviation", "lot_id", "deviation_id"),
        CheckConstraint("named_as IN ('lot', 'batch')", name="ck_deviation_lots_named_as"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deviation_id: Mapped[int] = mapped_column(ForeignKey("deviations.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    named_as: Mapped[str] = mapped_column(String(10))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    added_by: Mapped[str] = mapped_column(String(150))

    deviation: Mapped[Deviation] = relationship(back_populates="lot_links")
    lot: Mapped[Lot] = relationship(lazy="joined", innerjoin=True)
    removal: Mapped[DeviationLotRemoval | None] = relationship(lazy="selectin")


class DeviationLotRemoval(Base):
    """A lot removed from a deviation that named it by mistake: who, when, why. Append-only,
    like the link it ends."""

    __tablename__ = "deviation_lot_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("deviation_lots.id"), unique=True)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_by: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str] = mapped_column(Text)


def named_now():
    """SQL condition on DeviationLot rows: the link has not been removed (the lot is still
    named), for queries over links rather than loaded deviations (``named_links``)."""
    return ~exists().where(DeviationLotRemoval.link_id == DeviationLot.id)


CONTENT_FIELDS = ("title", "description", "kind", "severity", "occurred_on", "investigation",
                  "root_cause", "impact_assessment", "capa_required")
# what the person raising it describes (state open) and what the investigation finds (state
# in_investigation); qms.deviations.service enforces which set is open in which state
DESCRIPTION_FIELDS = frozenset({"title", "description", "kind", "severity", "occurred_on"})
INVESTIGATION_FIELDS = frozenset({"investigation", "root_cause", "impact_assessment",
                                  "capa_required"})


def named_lots(deviation: Deviation) -> dict[str, list[str]]:
    """The lot and batch numbers the deviation names, sorted: part of its signed content."""
    return {"lots": sorted(link.lot.number for link in deviation.named_links
                           if link.named_as == NamedAs.LOT.value),
            "batches": sorted(link.lot.number for link in deviation.named_links
                              if link.named_as == NamedAs.BATCH.value)}


def deviation_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a deviation keeps, whatever path wrote it."""
    problems: dict[str, list[str]] = {}
    for name in ("title", "description"):
        if not (content.get(name) or "").strip():
            problems[name] = [f"a deviation needs a {name}"]
    if content.get("kind") not in {k.value for k in DeviationKind}:
        problems["kind"] = [f"one of {', '.join(k.value for k in DeviationKind)}"]
    if content.get("severity") not in {s.value for s in Severity}:
        problems["severity"] = [f"one of {', '.join(s.value for s in Severity)}"]
    occurred = content.get("occurred_on")
    if not occurred:
        problems["occurred_on"] = ["the date it occurred is required"]
    elif occurred > today().isoformat():
        problems["occurred_on"] = ["must not be in the future"]
    return problems


def _before_transition(*args) -> None:
    from qms.deviations.service import before_deviation_transition  # the service imports us
    before_deviation_transition(*args)


def _after_transition(*args) -> None:
    from qms.deviations.service import after_deviation_transition
    after_deviation_transition(*args)


DEVIATIONS = register_record_type(RecordType(
    name="deviation", model=Deviation, collection="deviations", content_fields=CONTENT_FIELDS,
    editable_fields=DESCRIPTION_FIELDS | INVESTIGATION_FIELDS, extra_content=named_lots,
    check_content=deviation_problems, before_transition=_before_transition,
    after_transition=_after_transition,
    # naming lots and removing one change what the deviation is about: authorship
    content_revisions=frozenset({"name_lots", "remove_lot"})))
