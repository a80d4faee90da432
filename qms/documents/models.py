"""The documents table and its registration as a controlled record type."""
from __future__ import annotations

import enum
from datetime import date

from sqlalchemy import CheckConstraint, Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qms.db import Base
from qms.records.models import RecordType, VersionedRecord, register_record_type


class DocType(str, enum.Enum):
    SOP = "sop"
    SPECIFICATION = "specification"
    WORK_INSTRUCTION = "work_instruction"
    FORM = "form"


class Document(VersionedRecord, Base):
    __tablename__ = "documents"
    __table_args__ = (CheckConstraint(
        "doc_type IN ('sop', 'specification', 'work_instruction', 'form')",
        name="ck_documents_doc_type"),)

    title: Mapped[str] = mapped_column(String(200))
    doc_type: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(Text, default="")
    # the date from which the approved document applies; set while drafting
    effective_date: Mapped[date | None] = mapped_column(Date)


CONTENT_FIELDS = ("title", "doc_type", "summary", "effective_date")


def document_problems(content: dict) -> dict[str, list[str]]:
    """Rules every version of a document keeps, whatever path wrote it."""
    problems: dict[str, list[str]] = {}
    if not (content.get("title") or "").strip():
        problems["title"] = ["a document needs a title"]
    if content.get("doc_type") not in {t.value for t in DocType}:
        problems["doc_type"] = [f"one of {', '.join(t.value for t in DocType)}"]
    return problems


DOCUMENTS = register_record_type(RecordType(
    name="document", model=Document, collection="documents", content_fields=CONTENT_FIELDS,
    editable_fields=frozenset(CONTENT_FIELDS), check_content=document_problems))
