"""Request and response schemas of CAPA."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qms.api.spec import SafeInteger
from qms.capa.models import CapaSource
from qms.records.api import REASON, VERSION, RecordOut

SOURCES = [s.value for s in CapaSource]
TEXT_MAX = 20000


def _title(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _username(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=150), **options)


def _text(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=TEXT_MAX), **options)


class CapaActionOut(Schema):
    n = fields.Integer(attribute="position", metadata={"description": "1, 2, ... in the CAPA"})
    description = fields.String()
    owner = fields.String()
    due_on = fields.Date()
    added_at = fields.DateTime()
    added_by = fields.String()
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)
    evidence = fields.String(allow_none=True)
    overdue_reported_on = fields.Date(allow_none=True, metadata={
        "description": "when the overdue job reported it"})


class CapaOut(RecordOut):
    source = fields.String(metadata={"enum": SOURCES})
    source_reference = fields.String(metadata={
        "description": "the deviation number when source is deviation"})
    title = fields.String()
    problem_statement = fields.String()
    root_cause = fields.String()
    owner = fields.String()
    effectiveness_due_on = fields.Date(allow_none=True)
    actions = fields.List(fields.Nested(CapaActionOut))


class CapaCreate(Schema):
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    source_reference = fields.String(required=True, validate=validate.Length(min=1, max=80))
    title = _title(required=True)
    problem_statement = _text(required=True)
    root_cause = fields.String(load_default="", validate=validate.Length(max=TEXT_MAX))
    owner = _username(required=True)
    effectiveness_due_on = fields.Date(load_default=None, allow_none=True)


class CapaChanges(Schema):
    """Only the fields to change; unknown fields (source, source_reference) are refused."""
    title = _title()
    problem_statement = _text()
    root_cause = fields.String(validate=validate.Length(max=TEXT_MAX))
    owner = _username()
    effectiveness_due_on = fields.Date(allow_none=True)


class CapaEdit(Schema):
    changes = fields.Nested(CapaChanges, required=True)
    reason = REASON
    version = VERSION


class ActionCreate(Schema):
    description = _text(required=True)
    owner = _username(required=True)
    due_on = fields.Date(required=True)
    reason = REASON


class ActionCompletion(Schema):
    evidence = _text(required=True, metadata={"description": "what shows it was done"})
    reason = REASON


class CapaQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    source = fields.String(validate=validate.OneOf(SOURCES))
    source_reference = fields.String(validate=validate.Length(min=1, max=80))
    owner = _username()
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)
