"""Request and response shapes of the ERP feed."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qms.api.spec import SafeInteger

MAX_PAGE = 1000


class FeedQuery(Schema):
    after = fields.String(load_default=None, validate=validate.Length(max=40), metadata={
        "description": "next_cursor of the previous page; without it the feed starts at "
                       "your first unacknowledged event"})
    limit = SafeInteger(load_default=100, min=1, max=MAX_PAGE)


class ErpEventOut(Schema):
    """Version 1 of the event (docs/erp.md)."""
    event_id = fields.String()
    schema_version = fields.Integer()
    type = fields.String()
    occurred_at = fields.String()
    sequence = fields.Integer()
    lot = fields.String()
    batch = fields.String(allow_none=True)
    material = fields.String()
    material_name = fields.String()
    status = fields.String()
    previous_status = fields.String(allow_none=True)
    disposition = fields.String(metadata={"enum": ["Unrestricted", "Restricted"]})
    usage_decision = fields.String(allow_none=True, metadata={"enum": ["A", "R", None]})
    quantity = fields.String(metadata={"description": "decimal string"})
    unit = fields.String()
    expires_on = fields.String(allow_none=True)
    inspection = fields.String(allow_none=True)
    decided_by = fields.Dict()
    reason = fields.String(allow_none=True)


class FeedOut(Schema):
    events = fields.List(fields.Nested(ErpEventOut))
    next_cursor = fields.String()


class AcksIn(Schema):
    event_ids = fields.List(fields.String(validate=validate.Length(equal=36)), required=True,
                            validate=validate.Length(min=1, max=MAX_PAGE))


class AcksOut(Schema):
    acknowledged = fields.Integer(metadata={"description": "events newly acknowledged"})


class DeliveriesQuery(Schema):
    channel = fields.String(load_default=None, validate=validate.Length(max=80))
    limit = SafeInteger(load_default=100, min=1, max=MAX_PAGE)


class ParkedOut(Schema):
    channel = fields.String()
    sequence = fields.Integer()
    event_id = fields.String()
    type = fields.String()
    lot = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)


class DeliveriesOut(Schema):
    channels = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.Integer()), metadata={
        "description": "per channel: pending, delivered, parked"})
    parked = fields.List(fields.Nested(ParkedOut))


class RedeliverIn(Schema):
    channel = fields.String(required=True, validate=validate.Length(min=1, max=80))
    event_ids = fields.List(fields.String(validate=validate.Length(equal=36)),
                            load_default=None, validate=validate.Length(min=1, max=MAX_PAGE),
                            metadata={"description": "without it: every parked event"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class RedeliverOut(Schema):
    queued = fields.Integer()
