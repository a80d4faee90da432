"""Tables of inspection plans, inspection lots and their results, and their registration as
controlled record types.

An inspection plan (``IP-YYYY-NNNNN``) says what to inspect of a material at one stage and
how many units: its characteristics (a JSON list inside the record, so they are part of the
signed content) and a fixed sample size or an AQL plan. A new revision is a new plan record
that names the one it supersedes.

An inspection lot (``INS-YYYY-NNNNN``) is one inspection of one lot (incoming) or of one batch
(in-process at an operation, final) by one plan revision. It copies the plan's characteristics
when it opens, so the limits its results were judged by are in its own signed content.
Results are append-only evidence rows; a correction is a new row naming the row it corrects.
"""
from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint, select)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from qms.db import Base, ExactDecimal, UTCDateTime
from qms.materials.models import Batch, Lot, Material
from qms.records.models import RecordType, VersionedRecord, content_value, register_record_type


class Stage(str, enum.Enum):
    INCOMING = "incoming"
    IN_PROCESS = "in_process"
    FINAL = "final"


STAGES = tuple(s.value for s in Stage)
# inspection states in which no usage decision has been taken yet
UNDECIDED_STATES = ("open", "in_progress", "completed")
# the usage decision code of the ERP export (DESIGN.md "ERP export")
USAGE_DECISIONS = {"accepted": "A", "rejected": "R"}


class InspectionPlan(VersionedRecord, Base):
    __tablename__ = "inspection_plans"
    __table_args__ = (
        CheckConstraint("stage IN ('incoming', 'in_process', 'final')",
                        name="ck_inspection_plans_stage"),
        CheckConstraint("inspection_level IS NULL OR inspection_level IN ('I', 'II', 'III')",
                        name="ck_inspection_plans_level"),
        Index("ix_inspection_plans_material_stage", "material_id", "stage"),
    )

    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"))
    stage: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str | None] = mapped_column(String(80))  # in-process plans only
    title: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    supersedes: Mapped[str | None] = mapped_column(String(40))  # the plan number it replaces
    # sampling: a fixed sample size, or an AQL plan (general inspection level and AQL)
    sample_size: Mapped[int | None] = mapped_column(Integer)
    inspection_level: Mapped[str | None] = mapped_column(String(3))
    aql: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    characteristics: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    material: Mapped[Material] = relationship(lazy="joined", innerjoin=True)


class Inspection(VersionedRecord, Base):
    __tablename__ = "inspections"
    __table_args__ = (
        CheckConstraint("stage IN ('incoming', 'in_process', 'final')",
                        name="ck_inspections_stage"),
        CheckConstraint("lot_id IS NOT NULL OR batch_id IS NOT NULL",
                        name="ck_inspections_inspects_something"),
        Index("ix_inspections_lot_id", "lot_id"),
        Index("ix_inspections_batch_id", "batch_id"),
        Index("ix_inspections_plan_id", "plan_id"),
    )

    plan_id: Mapped[int] = mapped_column(ForeignKey("inspection_plans.id"))
    plan_revision: Mapped[int] = mapped_column(Integer)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"))
    stage: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str | None] = mapped_column(String(80))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    # sampling units in the lot (a quantity in pieces can pass 2^31), and how many of them
    # are inspected
    lot_size: Mapped[int] = mapped_column(BigInteger)
    sample_size: Mapped[int] = mapped_column(Integer)
    # the AQL plan used (null for a fixed sample size)
    code_letter: Mapped[str | None] = mapped_column(String(1))
    accept_number: Mapped[int | None] = mapped_column(Integer)
    reject_number: Mapped[int | None] = mapped_column(Integer)
    characteristics: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    deviation: Mapped[str | None] = mapped_column(String(40))  # raised from this inspection

    plan: Mapped[InspectionPlan] = relationship(lazy="joined", innerjoin=True)
    material: Mapped[Material] = relationship(lazy="joined", innerjoin=True)
    # loaded on access: an outer join cannot take part in the row lock (SELECT ... FOR
    # UPDATE) of the generic transition endpoint on PostgreSQL
    lot: Mapped[Lot | None] = relationship()
    batch: Mapped[Batch | None] = relationship()


class InspectionResult(Base):
    """One recorded value of one characteristic on one sample unit, judged against the
    inspection's limits when recorded. Append-only: a correction is a new row whose
    ``corrects_id`` names the row it replaces (which then no longer counts), with a reason."""

    __tablename__ = "inspection_results"
    __table_args__ = (
        UniqueConstraint("inspection_id", "seq", name="uq_inspection_results_seq"),
        CheckConstraint("(value IS NULL) <> (passed IS NULL)",
                        name="ck_inspection_results_value_or_passed"),
        CheckConstraint("corrects_id IS NULL OR reason IS NOT NULL",
                        name="ck_inspection_results_correction_reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the inspection: the result id
    characteristic: Mapped[str] = mapped_column(String(40))
    sample: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal | None] = mapped_column(ExactDecimal)  # numeric characteristics
    passed: Mapped[bool | None] = mapped_column(Boolean)  # attribute characteristics
    conforming: Mapped[bool] = mapped_column(Boolean)
    # at most one correction per row: a correction of a correction corrects the newer row
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_results.id"),
                                                    unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(150))


def results_of(inspection: Inspection) -> list[InspectionResult]:
    """Every result row of the inspection, in recording order."""
    session = object_session(inspection)
    return list(session.scalars(select(InspectionResult).where(
        InspectionResult.inspection_id == inspection.id).order_by(InspectionResult.seq)))


def result_documents(results: list[InspectionResult]) -> list[dict[str, Any]]:
    """The results as they appear in the inspection's content and the API: ``id`` is the
    result's number within the inspection; ``superseded_by`` names its correction."""
    seq_of = {r.id: r.seq for r in results}
    corrected_by = {r.corrects_id: r.seq for r in results if r.corrects_id is not None}
    return [{"id": r.seq, "characteristic": r.characteristic, "sample": r.sample,
             "value": content_value(r.value), "passed": r.passed, "conforming": r.conforming,
             "corrects": seq_of.get(r.corrects_id), "superseded_by": corrected_by.get(r.id),
             "reason": r.reason, "recorded_by": r.recorded_by,
             "recorded_at": content_value(r.recorded_at)} for r in results]


def _inspection_owners(inspection: Inspection) -> set[str]:
    """Who opened the inspection lot and who recorded or corrected any of its results: none
    of them takes its usage decision (results are written as revisions, so a recorder is
    not an author of the record)."""
    return {inspection.created_by} | {r.recorded_by for r in results_of(inspection)}


def _plan_content(plan: InspectionPlan) -> dict[str, Any]:
    return {"material": plan.material.number}


def _inspection_content(inspection: Inspection) -> dict[str, Any]:
    return {"plan": inspection.plan.number, "material": inspection.material.number,
            "lot": inspection.lot.number if inspection.lot is not None else None,
            "batch": inspection.batch.number if inspection.batch is not None else None,
            "results": result_documents(results_of(inspection))}


# The hooks live with the services; these wrappers import them when first called, because
# the services import this module.
def _plan_problems(content: dict) -> dict[str, list[str]]:
    from qms.inspection.rules import plan_problems
    return plan_problems(content)


def _before_plan_transition(*args: Any) -> None:
    from qms.inspection.plans import before_plan_transition
    before_plan_transition(*args)


def _after_plan_transition(*args: Any) -> None:
    from qms.inspection.plans import after_plan_transition
    after_plan_transition(*args)


def _before_inspection_transition(*args: Any) -> None:
    from qms.inspection.decisions import before_inspection_transition
    before_inspection_transition(*args)


def _after_inspection_transition(*args: Any) -> None:
    from qms.inspection.decisions import after_inspection_transition
    after_inspection_transition(*args)


PLAN_EDITABLE = frozenset({"title", "operation", "sample_size", "inspection_level", "aql",
                           "characteristics"})
# ``material``, ``plan``, ``lot`` and ``batch`` are relationships: content fields so that
# create_record can set them; extra_content replaces each by its number in the snapshot
INSPECTION_PLANS = register_record_type(RecordType(
    name="inspection_plan", model=InspectionPlan, collection="inspection-plans",
    content_fields=("material", "stage", "operation", "title", "revision", "supersedes",
                    "sample_size", "inspection_level", "aql", "characteristics"),
    editable_fields=PLAN_EDITABLE, extra_content=_plan_content, check_content=_plan_problems,
    before_transition=_before_plan_transition, after_transition=_after_plan_transition,
    # superseded when its successor is approved (a consequence of that approval)
    decision_revisions=frozenset({"supersede"})))
INSPECTIONS = register_record_type(RecordType(
    name="inspection", model=Inspection, collection="inspections",
    content_fields=("plan", "plan_revision", "material", "stage", "operation", "lot", "batch",
                    "lot_size", "sample_size", "code_letter", "accept_number",
                    "reject_number", "characteristics", "deviation"),
    editable_fields=frozenset(), extra_content=_inspection_content,
    owners=_inspection_owners, before_transition=_before_inspection_transition,
    after_transition=_after_inspection_transition,
    # results are the inspection's content; raising a deviation from it only links the two
    content_revisions=frozenset({"record_results", "correct_result"}),
    decision_revisions=frozenset({"raise_deviation"})))

from qms.inspection import hooks  # noqa: E402,F401  (registers with the materials module)
