"""Request and response schemas of inspection plans, inspection lots, results and the
supplier scorecard."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from qms.api.spec import DecimalString, SafeInteger
from qms.inspection.aql import AQL_SERIES, LEVELS, aql_key
from qms.inspection.models import STAGES, USAGE_DECISIONS, result_documents, results_of
from qms.inspection.results import summary
from qms.inspection.rules import (ATTRIBUTE, CHARACTERISTIC_TYPES, MAX_CHARACTERISTICS,
                                  MAX_DECIMALS, MAX_SAMPLE_SIZE, characteristic_document)
from qms.records.api import RecordOut

NUMERIC_ONLY = ("unit", "lsl", "usl", "target", "decimals")
MAX_RESULTS_PER_REQUEST = 5000
REASON_MAX = 2000
AQL_DOC = {"example": "1.0", "description": f"one of {', '.join(AQL_SERIES)}"}


def _code(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=40), **options)


def _title(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _operation(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=80), allow_none=True, **options)


class CharacteristicIn(Schema):
    """A numeric characteristic has a unit, decimals (the recording resolution) and at least
    one of LSL and USL; an attribute characteristic is judged pass / fail and has none of
    these. Limits are decimal strings; JSON numbers are refused."""
    code = _code(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(CHARACTERISTIC_TYPES))
    unit = fields.String(validate=validate.Length(min=1, max=20))
    lsl = DecimalString(allow_none=True, max_places=MAX_DECIMALS)
    usl = DecimalString(allow_none=True, max_places=MAX_DECIMALS)
    target = DecimalString(allow_none=True, max_places=MAX_DECIMALS)
    decimals = SafeInteger(min=0, max=MAX_DECIMALS)

    @validates_schema
    def _attribute_has_no_limits(self, data, **kwargs):
        if data.get("type") == ATTRIBUTE:
            given = [name for name in NUMERIC_ONLY if data.get(name) is not None]
            if given:
                raise ValidationError({name: ["only numeric characteristics have this"]
                                       for name in given})

    @post_load
    def _stored_form(self, data, **kwargs):
        return characteristic_document(data)


def _characteristics(**options) -> fields.List:
    return fields.List(fields.Nested(CharacteristicIn),
                       validate=validate.Length(min=1, max=MAX_CHARACTERISTICS), **options)


class _Sampling(Schema):
    """Sampling fields shared by creation and changes; the AQL in the standard's spelling."""

    @post_load
    def _standard_aql(self, data, **kwargs):
        if data.get("aql") is not None:
            try:
                data["aql"] = type(data["aql"])(aql_key(data["aql"]))
            except ValueError:
                raise ValidationError({"aql": [f"one of {', '.join(AQL_SERIES)}"]}) from None
        return data


class PlanCreate(_Sampling):
    material = _code(required=True, metadata={"description": "material code"})
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    operation = _operation(load_default=None, metadata={
        "description": "the operation (name or number) of an in-process plan"})
    title = _title(required=True)
    sample_size = SafeInteger(min=1, max=MAX_SAMPLE_SIZE, allow_none=True, load_default=None,
                              metadata={"description": "a fixed sample size (or use aql)"})
    inspection_level = fields.String(validate=validate.OneOf(LEVELS), allow_none=True,
                                     load_default=None)
    aql = DecimalString(allow_none=True, load_default=None, positive=True, max_places=3,
                        metadata=AQL_DOC)
    characteristics = _characteristics(required=True)


class PlanChanges(_Sampling):
    """Only the fields to change (while draft); unknown fields are refused."""
    operation = _operation()
    title = _title()
    sample_size = SafeInteger(min=1, max=MAX_SAMPLE_SIZE, allow_none=True)
    inspection_level = fields.String(validate=validate.OneOf(LEVELS), allow_none=True)
    aql = DecimalString(allow_none=True, positive=True, max_places=3,
                        metadata=AQL_DOC)
    characteristics = _characteristics()


class PlanQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    material = _code()
    stage = fields.String(validate=validate.OneOf(STAGES))
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)


class CharacteristicOut(Schema):
    code = fields.String()
    name = fields.String()
    type = fields.String(metadata={"enum": list(CHARACTERISTIC_TYPES)})
    unit = fields.String(allow_none=True)
    lsl = fields.String(allow_none=True, metadata={"description": "decimal string"})
    usl = fields.String(allow_none=True, metadata={"description": "decimal string"})
    target = fields.String(allow_none=True, metadata={"description": "decimal string"})
    decimals = fields.Integer(allow_none=True)


class PlanOut(RecordOut):
    material = fields.Function(lambda plan: plan.material.number, metadata={"type": "string"})
    stage = fields.String(metadata={"enum": list(STAGES)})
    operation = fields.String(allow_none=True)
    title = fields.String()
    revision = fields.Integer()
    supersedes = fields.String(allow_none=True)
    sample_size = fields.Integer(allow_none=True)
    inspection_level = fields.String(allow_none=True)
    aql = DecimalString(allow_none=True)
    characteristics = fields.List(fields.Nested(CharacteristicOut))


class InspectionOpen(Schema):
    """Name the plan, or the stage (and for in-process the operation) whose effective plan
    applies to the material of the lot or batch."""
    plan = _code(load_default=None, allow_none=True)
    material = _code(load_default=None, allow_none=True,
                     metadata={"description": "optional: checked against the lot or batch"})
    stage = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STAGES))
    lot_number = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(min=1, max=40))
    batch_number = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=40))
    operation = _operation(load_default=None)
    lot_size = SafeInteger(min=1, max=10**9, load_default=None, allow_none=True, metadata={
        "description": "sampling units in the lot, e.g. containers received; default: the "
                       "lot's quantity rounded up"})


class InspectionQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    stage = fields.String(validate=validate.OneOf(STAGES))
    lot = fields.String(validate=validate.Length(max=40))
    batch = fields.String(validate=validate.Length(max=40))
    material = _code()
    plan = _code()
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)


class ResultIn(Schema):
    characteristic = _code(required=True)
    value = DecimalString(metadata={"description": "numeric characteristics: the measured "
                                                   "value as a decimal string"})
    passed = fields.Boolean(truthy={True}, falsy={False},
                            metadata={"description": "attribute characteristics"})
    sample = SafeInteger(min=1, max=MAX_SAMPLE_SIZE, metadata={
        "description": "sample unit 1..n; default: the next without a result"})
    corrects = SafeInteger(min=1, metadata={"description": "the id of the result this one "
                                                           "corrects (a reason is required)"})
    reason = fields.String(validate=validate.Length(min=1, max=REASON_MAX))


class ResultsRequest(Schema):
    results = fields.List(fields.Nested(ResultIn), required=True,
                          validate=validate.Length(min=1, max=MAX_RESULTS_PER_REQUEST))


class ResultOut(Schema):
    id = fields.Integer(metadata={"description": "the result's number within the inspection"})
    characteristic = fields.String()
    sample = fields.Integer()
    value = fields.String(allow_none=True)
    passed = fields.Boolean(allow_none=True)
    conforming = fields.Boolean()
    corrects = fields.Integer(allow_none=True)
    superseded_by = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    recorded_by = fields.String()
    recorded_at = fields.String()


class CharacteristicProgressOut(Schema):
    code = fields.String()
    required = fields.Integer()
    recorded = fields.Integer()
    nonconforming = fields.Integer()


class SummaryOut(Schema):
    characteristics = fields.List(fields.Nested(CharacteristicProgressOut))
    complete = fields.Boolean()
    nonconforming_results = fields.Integer()
    nonconforming_units = fields.Integer()
    sampling_verdict = fields.String(allow_none=True, metadata={
        "enum": ["accept", "reject"], "description": "advisory, QA decides: the AQL plan's "
        "Ac/Re applied to the nonconforming units, or for an AQL above 10 to the "
        "nonconforming results (nonconformities per hundred units)"})


def _number(name: str):
    def number(inspection):
        linked = getattr(inspection, name)
        return linked.number if linked is not None else None
    return fields.Function(number, allow_none=True, metadata={"type": "string"})


class InspectionOut(RecordOut):
    plan = fields.Function(lambda i: i.plan.number, metadata={"type": "string"})
    plan_revision = fields.Integer()
    material = fields.Function(lambda i: i.material.number, metadata={"type": "string"})
    stage = fields.String(metadata={"enum": list(STAGES)})
    operation = fields.String(allow_none=True)
    lot = _number("lot")
    batch = _number("batch")
    supplier = fields.Function(
        lambda i: i.lot.supplier.number if i.lot is not None and i.lot.supplier else None,
        allow_none=True, metadata={"type": "string"})
    lot_size = fields.Integer()
    sample_size = fields.Integer()
    code_letter = fields.String(allow_none=True)
    accept_number = fields.Integer(allow_none=True)
    reject_number = fields.Integer(allow_none=True)
    characteristics = fields.List(fields.Nested(CharacteristicOut))
    results = fields.Function(lambda i: ResultOut(many=True).dump(_results(i)),
                              metadata={"type": "array", "items": {"type": "object"},
                                        "description": "every result, corrected ones too"})
    summary = fields.Function(lambda i: SummaryOut().dump(summary(_inspection(i))),
                              metadata={"type": "object"})
    usage_decision = fields.Function(
        lambda i: USAGE_DECISIONS.get(i.state), allow_none=True,
        metadata={"type": "string", "enum": list(USAGE_DECISIONS.values())})
    deviation = fields.String(allow_none=True)


def _inspection(view):
    # record_document hands the schema a view of the record; the queries need the row
    return getattr(view, "_record", view)


def _results(view):
    return result_documents(results_of(_inspection(view)))


class DeviationFromInspection(Schema):
    title = _title(metadata={"description": "default: names the inspection"})
    description = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    severity = fields.String(required=True, validate=validate.OneOf(["minor", "major",
                                                                     "critical"]))
    kind = fields.String(validate=validate.OneOf(["planned", "unplanned"]))
    occurred_on = fields.Date()


class DeviationLinkOut(Schema):
    deviation = fields.String()
    inspection = fields.Nested(InspectionOut)


class ScorecardQuery(Schema):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)


class ScorecardOut(Schema):
    supplier = fields.String()
    name = fields.String()
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    accepted = fields.Integer()
    rejected = fields.Integer()
    open = fields.Integer()
    decided = fields.Integer()
    acceptance_rate = fields.String(allow_none=True, metadata={
        "description": "accepted / decided, 4 decimal places; null without decisions"})
