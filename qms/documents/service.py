"""Controlled documents: creation through the generic record path, and look-ups.
Flushes, never commits."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.documents.models import Document
from qms.identity.models import User
from qms.records.service import create_record
from qms.records.workflow import Workflow



def create_document(session: Session, workflow: Workflow, actor: User,
                    fields: Mapping[str, Any]) -> Document:
    """A new draft document, version 1, numbered DOC-YYYY-NNNNN."""
    cleaned = dict(fields)
    if isinstance(cleaned.get("title"), str):
        cleaned["title"] = cleaned["title"].strip()
    return create_record(session, workflow, actor, cleaned)


def list_documents(session: Session, *, state: str | None = None, doc_type: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[Document]:
    """Documents, newest number first, filtered by state and type."""
    query = select(Document).order_by(Document.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Document.state == state)
    if doc_type is not None:
        query = query.where(Document.doc_type == doc_type)
    return list(session.scalars(query))

