"""Controlled documents over HTTP: list and create here; read, edit, transitions and history
are the generic record endpoints (qms.records.api)."""
from __future__ import annotations

from flask import g

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session, state
from qms.documents.models import DOCUMENTS
from qms.documents.schemas import DocumentChanges, DocumentCreate, DocumentOut, DocumentQuery
from qms.documents.service import create_document, list_documents
from qms.records.api import record_document, record_routes


@endpoint(api, "/documents", "POST", summary="Draft a new controlled document",
          tag="documents", permission="document.create", body=DocumentCreate,
          response=DocumentOut, status=201)
def create_document_view(body):
    """Creates version 1 in state draft with the next number DOC-YYYY-NNNNN."""
    session, user = db_session(), g.api_user
    document = create_document(session, state().workflows.get(DOCUMENTS.name), user, body)
    return record_document(document, DocumentOut, user), 201


@endpoint(api, "/documents", "GET", summary="List controlled documents", tag="documents",
          permission="record.read", query=DocumentQuery, response=DocumentOut, many=True)
def list_documents_view(query):
    """Newest first; filter by state and doc_type."""
    documents = list_documents(db_session(), **query)
    return [record_document(d, DocumentOut, g.api_user) for d in documents]


record_routes(DOCUMENTS, DocumentOut, changes_schema=DocumentChanges,
              edit_permission="document.edit")
