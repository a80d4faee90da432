"""Request and response schemas of controlled documents."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qms.api.spec import SafeInteger
from qms.documents.models import DocType
from qms.records.api import RecordOut

DOC_TYPES = [t.value for t in DocType]


def _title(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _doc_type(**options) -> fields.String:
    return fields.String(validate=validate.OneOf(DOC_TYPES), **options)


class DocumentOut(RecordOut):
    title = fields.String()
    doc_type = fields.String(metadata={"enum": DOC_TYPES})
    summary = fields.String()
    effective_date = fields.Date(allow_none=True)


class DocumentCreate(Schema):
    title = _title(required=True)
    doc_type = _doc_type(required=True)
    summary = fields.String(load_default="", validate=validate.Length(max=20000))
    effective_date = fields.Date(load_default=None, allow_none=True)


class DocumentChanges(Schema):
    """Only the fields to change; unknown fields are refused."""
    title = _title()
    doc_type = _doc_type()
    summary = fields.String(validate=validate.Length(max=20000))
    effective_date = fields.Date(allow_none=True)


class DocumentQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    doc_type = _doc_type()
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)
