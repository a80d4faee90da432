"""Tables of materials, suppliers, lots, batches and the genealogy edges.

Every material lot, received from a supplier or produced in-house, is one row of ``lots``, so
that the genealogy is one graph over one table: a batch (``batches``, the production record)
owns the lot it produced (same number), and each consumption is an edge from an input lot to
that output lot. A lot's workflow state is its status (quarantine, released, rejected, on_hold,
expired).
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from qms.dates import today
from qms.db import Base, ExactDecimal, UTCDateTime
from qms.materials.hooks import (after_batch_transition, before_batch_transition,
                                 before_lot_transition, lot_status_changed,
                                 owners_of_batch)
from qms.records.models import RecordType, VersionedRecord, register_record_type


class MaterialKind(str, enum.Enum):
    RAW = "raw"
    PACKAGING = "packaging"
    INTERMEDIATE = "intermediate"
    FINISHED = "finished"


class LotOrigin(str, enum.Enum):
    RECEIVED = "received"
    PRODUCED = "produced"


class LotStatus(str, enum.Enum):
    QUARANTINE = "quarantine"
    RELEASED = "released"
    REJECTED = "rejected"
    ON_HOLD = "on_hold"
    EXPIRED = "expired"


class Material(VersionedRecord, Base):
    """A material master record; its number is the material code (``RM-API-001``)."""

    __tablename__ = "materials"
    __table_args__ = (CheckConstraint("kind IN ('raw', 'packaging', 'intermediate', 'finished')",
                                      name="ck_materials_kind"),)

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str] = mapped_column(String(20))  # base unit of quantities: kg, g, L, pcs
    # days from receipt / production to expiry; None: the lot's expiry is given explicitly
    shelf_life_days: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


class Supplier(VersionedRecord, Base):
    """A supplier; its number is the supplier code. Its state is the approval status."""

    __tablename__ = "suppliers"

    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(200), default="")


class Lot(VersionedRecord, Base):
    """One lot of one material; its state is the lot status."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("origin IN ('received', 'produced')", name="ck_lots_origin"),
        CheckConstraint("origin = 'produced' OR supplier_id IS NOT NULL",
                        name="ck_lots_received_from_supplier"),
        Index("ix_lots_material_id", "material_id"),
        Index("ix_lots_supplier_id", "supplier_id"),
        Index("ix_lots_expires_on", "expires_on"),
    )

    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"))
    origin: Mapped[str] = mapped_column(String(20))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"))
    supplier_lot: Mapped[str | None] = mapped_column(String(80))  # the supplier's own number
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(20))
    received_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    # the status to return to when the last open deviation naming the lot closes
    status_before_hold: Mapped[str | None] = mapped_column(String(20))

    material: Mapped[Material] = relationship(lazy="joined", innerjoin=True)
    # loaded on access: an outer join would stop SELECT ... FOR UPDATE of a lot (PostgreSQL)
    supplier: Mapped[Supplier | None] = relationship()

    def is_expired_on(self, day: date) -> bool:
        """Whether the lot is past its expiry date on ``day`` (in date on the day itself)."""
        return self.expires_on is not None and self.expires_on < day


class Batch(VersionedRecord, Base):
    """The production record of a batch; ``lot`` is the lot it produced (same number)."""

    __tablename__ = "batches"

    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), unique=True)
    line: Mapped[str] = mapped_column(String(40), default="")  # production line / equipment
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(20))
    produced_on: Mapped[date | None] = mapped_column(Date)

    material: Mapped[Material] = relationship(lazy="joined", innerjoin=True)
    lot: Mapped[Lot] = relationship(lazy="joined", innerjoin=True)

    @property
    def expires_on(self) -> date | None:
        """The output lot's expiry date: batch record data, corrected only by a batch edit
        (qms.materials.batches.edit_batch), which also versions the lot."""
        return self.lot.expires_on

    @expires_on.setter
    def expires_on(self, value: date) -> None:
        self.lot.expires_on = value

    @property
    def inputs(self) -> list[dict]:
        """The consumed lots [{"lot", "quantity", "unit"}], in lot number order, then in
        the order they were consumed."""
        rows = object_session(self).execute(
            select(Lot.number, LotConsumption.quantity, LotConsumption.unit)
            .join(Lot, Lot.id == LotConsumption.input_lot_id)
            .where(LotConsumption.batch_id == self.id).order_by(LotConsumption.id)).all()
        return sorted(({"lot": number, "quantity": str(quantity), "unit": unit}
                       for number, quantity, unit in rows), key=lambda entry: entry["lot"])


class LotConsumption(Base):
    """A genealogy edge: ``quantity`` of ``input_lot`` went into the batch whose output lot is
    ``output_lot``. Append-only (a wrong entry is corrected by a reversing entry with a
    reason, never edited); indexed both ways for backward and forward trace."""

    __tablename__ = "lot_consumptions"
    __table_args__ = (
        # covering: a trace reads its edges from the index alone, in either direction
        Index("ix_lot_consumptions_output_input", "output_lot_id", "input_lot_id", "quantity",
              "unit"),
        Index("ix_lot_consumptions_input_output", "input_lot_id", "output_lot_id", "quantity",
              "unit"),
        CheckConstraint("input_lot_id <> output_lot_id", name="ck_lot_consumptions_not_self"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    input_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    output_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)  # negative: a reversing entry
    unit: Mapped[str] = mapped_column(String(20))
    consumed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_by: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str | None] = mapped_column(Text)


class NumberSequence(Base):
    """Counters of the configurable lot and batch number rules (config/numbering.toml), one
    per rendered rule prefix (e.g. per material and day). Incremented in the creating
    transaction, like record numbers, so a rolled-back creation leaves no gap."""

    __tablename__ = "number_sequences"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


# the version action of a produced lot corrected through its batch (edit_batch)
BATCH_EDIT = "batch_edit"
UNITS = ("kg", "g", "mg", "L", "mL", "pcs")  # no conversion: a lot is in its material's unit


def material_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a material keeps, whatever path wrote it."""
    problems: dict[str, list[str]] = {}
    if not (content.get("name") or "").strip():
        problems["name"] = ["a material needs a name"]
    if content.get("kind") not in {k.value for k in MaterialKind}:
        problems["kind"] = [f"one of {', '.join(k.value for k in MaterialKind)}"]
    if content.get("unit") not in UNITS:
        problems["unit"] = [f"one of {', '.join(UNITS)}"]
    shelf_life = content.get("shelf_life_days")
    if shelf_life is not None and (not isinstance(shelf_life, int) or shelf_life < 1):
        problems["shelf_life_days"] = ["at least 1 day, or null when each lot's expiry is given"]
    return problems


# ``material``, ``supplier`` and ``lot`` are relationships: they are content fields so that
# create_record can set them, and extra_content replaces each in the snapshot by its number.
def _lot_links(lot: Lot) -> dict:
    return {"material": lot.material.number,
            "supplier": lot.supplier.number if lot.supplier is not None else None}


def _batch_content(batch: Batch) -> dict:
    """The batch's material, lot and consumed lots, in the version snapshot (and therefore
    under any signature of the batch record)."""
    return {"material": batch.material.number, "lot": batch.lot.number,
            "inputs": batch.inputs}


MATERIALS = register_record_type(RecordType(
    name="material", model=Material, collection="materials",
    content_fields=("name", "kind", "unit", "shelf_life_days", "description"),
    # kind and unit are fixed: lots already received are counted in that unit
    editable_fields=frozenset({"name", "shelf_life_days", "description"}),
    check_content=material_problems))
SUPPLIERS = register_record_type(RecordType(
    name="supplier", model=Supplier, collection="suppliers",
    content_fields=("name", "address", "contact"),
    editable_fields=frozenset({"name", "address", "contact"})))
def lot_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a lot keeps, whatever path wrote it (receipt or correction)."""
    received, expires = content.get("received_on"), content.get("expires_on")
    if received and expires and expires < received:  # ISO dates compare as text
        return {"expires_on": [f"{expires} is before the receipt date {received}"]}
    return {}


def batch_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a batch keeps: not produced in the future, and its lot does
    not expire before it was produced (ISO dates compare as text)."""
    produced, expires = content.get("produced_on"), content.get("expires_on")
    if produced and produced > today().isoformat():
        return {"produced_on": [f"{produced} is in the future"]}
    if produced and expires and expires < produced:
        return {"expires_on": [f"{expires} is before the production date {produced}"]}
    return {}


LOTS = register_record_type(RecordType(
    name="lot", model=Lot, collection="lots",
    content_fields=("material", "origin", "supplier", "supplier_lot", "quantity", "unit",
                    "received_on", "expires_on", "status_before_hold"),
    editable_fields=frozenset({"supplier_lot", "expires_on"}), extra_content=_lot_links,
    check_content=lot_problems, before_transition=before_lot_transition,
    state_changed=lot_status_changed,
    # holds, the status a decision elsewhere sets, and expiry follow from other records
    decision_revisions=frozenset({"hold", "unhold", "released", "rejected", "expire"}),
    # a produced lot's data is corrected on its batch, which the lot follows
    content_revisions=frozenset({BATCH_EDIT})))
BATCHES = register_record_type(RecordType(
    name="batch", model=Batch, collection="batches",
    # expires_on is the output lot's (Batch.expires_on): in the batch's snapshot, so a
    # signature of the batch names the expiry date the signer saw, and corrected by a batch
    # edit (qms.materials.batches.edit_batch), never on the lot
    content_fields=("material", "lot", "line", "quantity", "unit", "produced_on",
                    "expires_on"),
    editable_fields=frozenset({"line", "produced_on", "expires_on"}),
    extra_content=_batch_content,
    check_content=batch_problems, before_transition=before_batch_transition,
    after_transition=after_batch_transition, owners=owners_of_batch,
    # a consumption and its reversal change what the batch is made of: production authorship
    content_revisions=frozenset({"consume", "reverse"})))
