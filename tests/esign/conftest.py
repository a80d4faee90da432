"""Fixtures for signing at the service level: a document under review and a signer."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

import qms.documents.api  # noqa: F401  (registers the record type and its routes before any app)
from qms.documents.models import Document
from qms.identity.authentication import find_user
from qms.records.service import apply_transition, create_record


@dataclass
class ReviewTarget:
    number: str
    author: object
    reviewer: object


@pytest.fixture
def review_target(app, make_user) -> ReviewTarget:
    """A document in_review (version 2), written by ann.author; rick.reviewer may review it."""
    author = make_user("ann.author", "production")
    reviewer = make_user("rick.reviewer", "qa_reviewer")
    return ReviewTarget(document_in_review(app, author.username), author, reviewer)


def document_in_review(app, author: str) -> str:
    """Write and submit a document as ``author``; its number (version 2, in_review)."""
    state = app.extensions["qms"]
    workflow = state.workflows.get("document")
    with state.db.unit_of_work() as session:
        writer = find_user(session, author)
        document = create_record(session, workflow, writer, {
            "title": "Specification of purified water", "doc_type": "specification",
            "summary": "Conductivity below 1.3 uS/cm.", "effective_date": None})
        apply_transition(session, state.security, workflow, document, writer, "submit", None, None)
        return document.number


@pytest.fixture
def load_document(app):
    def load(session, number: str) -> Document:
        return session.scalar(select(Document).where(Document.number == number))
    return load
