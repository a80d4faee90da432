"""Change control tables and their registration as a controlled record type.

A change control's content (what its signatures cover) is its own fields plus the list of
impacted items. Approvals are not content: each is an electronic signature (meaning
*approved*) of the unchanged content, and a ``change_control_approvals`` row records which
required slot that signature filled. So every approval of one change signs the same content
hash, and an approval never makes the earlier ones "changed since signing".
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qms.change_control.approvals import RISKS, required_slots
from qms.change_control.hooks import after_change_transition, before_change_transition
from qms.db import Base, UTCDateTime, utcnow
from qms.esign.models import Signature
from qms.records.models import RecordType, VersionedRecord, register_record_type

MAX_ITEMS = 100
NUMBER_LENGTH = 40


class ChangeType(str, enum.Enum):
    DOCUMENT = "document"
    PROCESS = "process"
    EQUIPMENT = "equipment"
    SPECIFICATION = "specification"
    SUPPLIER = "supplier"
    SYSTEM = "system"


class ItemKind(str, enum.Enum):
    INSPECTION_PLAN = "inspection_plan"
    MATERIAL = "material"
    DOCUMENT = "document"
    SUPPLIER = "supplier"


class VerificationResult(str, enum.Enum):
    EFFECTIVE = "effective"
    NOT_EFFECTIVE = "not_effective"


CHANGE_TYPES = tuple(t.value for t in ChangeType)
ITEM_KINDS = tuple(k.value for k in ItemKind)
VERIFICATION_RESULTS = tuple(r.value for r in VerificationResult)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ChangeControl(VersionedRecord, Base):
    __tablename__ = "change_controls"
    __table_args__ = (
        CheckConstraint(_one_of("change_type", CHANGE_TYPES), name="ck_change_controls_type"),
        CheckConstraint(_one_of("risk", RISKS), name="ck_change_controls_risk"),
        CheckConstraint("verification_result IS NULL OR "
                        + _one_of("verification_result", VERIFICATION_RESULTS),
                        name="ck_change_controls_verification_result"),
    )

    title: Mapped[str] = mapped_column(String(200))
    change_type: Mapped[str] = mapped_column(String(20))
    risk: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(Text, default="")
    justification: Mapped[str] = mapped_column(Text, default="")
    implementation_plan: Mapped[str] = mapped_column(Text, default="")
    implementation_notes: Mapped[str] = mapped_column(Text, default="")
    verification_result: Mapped[str | None] = mapped_column(String(20))
    verification_notes: Mapped[str] = mapped_column(Text, default="")

    item_rows: Mapped[list[ChangeControlItem]] = relationship(
        order_by="ChangeControlItem.id", lazy="selectin", cascade="save-update, merge")
    approvals: Mapped[list[ChangeControlApproval]] = relationship(
        order_by="ChangeControlApproval.id", lazy="selectin", cascade="save-update, merge")

    # ``impacted_items`` is a content field backed by child rows, so that the generic
    # create_record / update_record set it (as a draft edit with a reason) and every version
    # snapshot, hence every signature, covers the list
    @property
    def impacted_items(self) -> list[dict[str, str]]:
        """The items the change names now, in the order they were added."""
        return [{"kind": row.kind, "number": row.item_number} for row in self.item_rows
                if row.removed_at is None]

    @impacted_items.setter
    def impacted_items(self, items: list[dict[str, str]]) -> None:
        # rows are never deleted (the application's database role may not DELETE): a
        # removed item keeps its row, marked with when; the versions show who and why
        wanted = [(item["kind"], item["number"]) for item in items]
        now = utcnow()
        current = {}
        for row in self.item_rows:
            if row.removed_at is None:
                if (row.kind, row.item_number) in wanted:
                    current[(row.kind, row.item_number)] = row
                else:
                    row.removed_at = now
        for kind, number in wanted:
            if (kind, number) not in current:
                self.item_rows.append(ChangeControlItem(kind=kind, item_number=number,
                                                        added_at=now))

    @property
    def approvals_required(self) -> list[dict[str, str | None]]:
        """Every slot the risk level requires, with the username that filled it or None."""
        filled = {approval.slot: approval.username for approval in self.approvals}
        return [{"slot": slot.name, "role": slot.role, "filled_by": filled.get(slot.name)}
                for slot in required_slots(self.risk)]

    def filled_slots(self) -> list[str]:
        return [approval.slot for approval in self.approvals]

    def add_approval(self, slot: str, signature: Signature) -> ChangeControlApproval:
        approval = ChangeControlApproval(slot=slot, username=signature.signer,
                                         signature=signature, approved_at=signature.at)
        self.approvals.append(approval)
        return approval


class ChangeControlItem(Base):
    """An item (inspection plan, material, document, supplier) a change control names."""

    __tablename__ = "change_control_items"
    __table_args__ = (Index("ix_change_control_items_item", "kind", "item_number"),
                      CheckConstraint(_one_of("kind", ITEM_KINDS),
                                      name="ck_change_control_items_kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_control_id: Mapped[int] = mapped_column(ForeignKey("change_controls.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    item_number: Mapped[str] = mapped_column(String(NUMBER_LENGTH))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChangeControlApproval(Base):
    """Which required approval slot one *approved* signature filled. Never changed."""

    __tablename__ = "change_control_approvals"
    __table_args__ = (
        UniqueConstraint("change_control_id", "slot", name="uq_change_control_approvals_slot"),
        UniqueConstraint("change_control_id", "username",
                         name="uq_change_control_approvals_username"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_control_id: Mapped[int] = mapped_column(ForeignKey("change_controls.id"))
    slot: Mapped[str] = mapped_column(String(20))
    username: Mapped[str] = mapped_column(String(150))
    signature_id: Mapped[int] = mapped_column(ForeignKey("signatures.id"), unique=True)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)

    signature: Mapped[Signature] = relationship(lazy="joined", innerjoin=True)


EDITABLE_FIELDS = ("title", "change_type", "risk", "description", "justification",
                   "implementation_plan", "impacted_items")
CONTENT_FIELDS = EDITABLE_FIELDS + ("implementation_notes", "verification_result",
                                    "verification_notes")


def change_control_problems(content: dict[str, Any]) -> dict[str, list[str]]:
    """Rules every version of a change control keeps, whatever path wrote it (that the
    impacted items exist is checked where they are added: qms.change_control.service)."""
    problems: dict[str, list[str]] = {}
    if not (content.get("title") or "").strip():
        problems["title"] = ["a change control needs a title"]
    if content.get("change_type") not in CHANGE_TYPES:
        problems["change_type"] = [f"one of {', '.join(CHANGE_TYPES)}"]
    if content.get("risk") not in RISKS:
        problems["risk"] = [f"one of {', '.join(RISKS)}"]
    if content.get("verification_result") not in (None, *VERIFICATION_RESULTS):
        problems["verification_result"] = [f"one of {', '.join(VERIFICATION_RESULTS)}"]
    problems.update(item_problems(content.get("impacted_items") or []))
    return problems


def item_problems(items: list[dict[str, Any]],
                  field: str = "impacted_items") -> dict[str, list[str]]:
    """Shape of an impacted-items list: known kinds, numbers given, no item twice."""
    if len(items) > MAX_ITEMS:
        return {field: [f"at most {MAX_ITEMS} impacted items"]}
    problems: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        kind, number = item.get("kind"), item.get("number")
        if kind not in ITEM_KINDS:
            problems[f"{field}.{index}.kind"] = [f"one of {', '.join(ITEM_KINDS)}"]
        if not isinstance(number, str) or not number.strip() or len(number) > NUMBER_LENGTH:
            problems[f"{field}.{index}.number"] = [f"1 to {NUMBER_LENGTH} characters"]
        elif (kind, number) in seen:
            problems[f"{field}.{index}.number"] = [f"{kind} {number} is listed twice"]
        seen.add((kind, number))
    return problems


CHANGE_CONTROLS = register_record_type(RecordType(
    name="change_control", model=ChangeControl, collection="change-controls",
    content_fields=CONTENT_FIELDS, editable_fields=frozenset(EDITABLE_FIELDS),
    check_content=change_control_problems, before_transition=before_change_transition,
    after_transition=after_change_transition,
    # the implementation notes are the implementer's content; the verification result is the
    # verifier's decision, signed next as "verify"; the last approval completes the approvals
    content_revisions=frozenset({"implementation_recorded"}),
    decision_revisions=frozenset({"verification_recorded", "approvals_complete"})))
