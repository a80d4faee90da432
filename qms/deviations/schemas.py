"""Request and response schemas of deviations."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qms.api.spec import SafeInteger
from qms.deviations.models import DeviationKind, NamedAs, Severity, named_lots
from qms.records.api import REASON, VERSION, RecordOut

KINDS = [k.value for k in DeviationKind]
SEVERITIES = [s.value for s in Severity]
TEXT_MAX = 20000
NUMBERS = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                      validate=validate.Length(max=500), load_default=list)


def _title(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _text(**options) -> fields.String:
    return fields.String(validate=validate.Length(max=TEXT_MAX), **options)


class NamedLotOut(Schema):
    number = fields.String()
    named_as = fields.String(metadata={"enum": [n.value for n in NamedAs]})
    status = fields.String(metadata={"description": "the lot's current status"})


class LinkedCapaOut(Schema):
    number = fields.String()
    state = fields.String()


class RemovedLotOut(Schema):
    number = fields.String()
    named_as = fields.String(metadata={"enum": ["lot", "batch"]})
    removed_by = fields.String()
    removed_at = fields.DateTime()
    reason = fields.String()


class DeviationOut(RecordOut):
    title = fields.String()
    description = fields.String()
    kind = fields.String(metadata={"enum": KINDS})
    severity = fields.String(metadata={"enum": SEVERITIES})
    occurred_on = fields.Date()
    investigation = fields.String()
    root_cause = fields.String()
    impact_assessment = fields.String()
    capa_required = fields.Boolean(allow_none=True, metadata={
        "description": "null until the investigation decides"})
    lots = fields.Function(lambda d: named_lots(d)["lots"],
                           metadata={"type": "array", "items": {"type": "string"}})
    batches = fields.Function(lambda d: named_lots(d)["batches"],
                              metadata={"type": "array", "items": {"type": "string"}})
    affected_lots = fields.List(fields.Nested(NamedLotOut), metadata={
        "description": "every lot the deviation names (a batch as its output lot)"})
    removed_lots = fields.List(fields.Nested(RemovedLotOut), metadata={
        "description": "lots it named by mistake and no longer names"})
    capas = fields.List(fields.Nested(LinkedCapaOut), metadata={
        "description": "CAPAs raised with this deviation as their source (not part of its "
                       "signed content)"})


class DeviationCreate(Schema):
    title = _title(required=True)
    description = fields.String(required=True, validate=validate.Length(min=1, max=TEXT_MAX))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    occurred_on = fields.Date(required=True)
    lots = NUMBERS
    batches = NUMBERS


class DeviationChanges(Schema):
    """Only the fields to change; unknown fields are refused. Title to occurred_on while
    open; investigation to capa_required while in investigation."""
    title = _title()
    description = fields.String(validate=validate.Length(min=1, max=TEXT_MAX))
    kind = fields.String(validate=validate.OneOf(KINDS))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    occurred_on = fields.Date()
    investigation = _text()
    root_cause = _text()
    impact_assessment = _text()
    capa_required = fields.Boolean(allow_none=True)


class DeviationEdit(Schema):
    changes = fields.Nested(DeviationChanges, required=True)
    reason = REASON
    version = VERSION


class RemoveLotRequest(Schema):
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40),
                               metadata={"description": "the lot or batch number"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class NameLotsRequest(Schema):
    lots = NUMBERS
    batches = NUMBERS
    reason = REASON


class DeviationQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    lot = fields.String(validate=validate.Length(min=1, max=40),
                        metadata={"description": "deviations naming this lot or batch"})
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)
