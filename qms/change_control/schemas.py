"""Request and response schemas of change controls."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from audit.canonical import utc_timestamp
from qms.api.spec import SafeInteger
from qms.change_control.approvals import RISKS
from qms.change_control.models import (CHANGE_TYPES, ITEM_KINDS, NUMBER_LENGTH,
                                       VERIFICATION_RESULTS, MAX_ITEMS)
from qms.records.api import VERSION, RecordOut

TEXT_MAX = 20000


def _title(**options) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **options)


def _change_type(**options) -> fields.String:
    return fields.String(validate=validate.OneOf(CHANGE_TYPES), **options)


def _risk(**options) -> fields.String:
    return fields.String(validate=validate.OneOf(RISKS), **options)


def _text(**options) -> fields.String:
    return fields.String(validate=validate.Length(max=TEXT_MAX), **options)


def _reason() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ImpactedItem(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ITEM_KINDS))
    number = fields.String(required=True, validate=validate.Length(min=1, max=NUMBER_LENGTH),
                           metadata={"description": "the item's number or code (material "
                                                    "code, plan, document or supplier number)"})


class ApprovalOut(Schema):
    slot = fields.String(metadata={"description": "qa_1, qa_2 or production"})
    username = fields.String()
    name = fields.Function(lambda a: a.signature.name, metadata={
        "type": "string", "description": "printed name, as signed"})
    at = fields.Function(lambda a: utc_timestamp(a.approved_at), metadata={"type": "string"})
    signature_id = fields.Integer()
    record_version = fields.Function(lambda a: a.signature.record_version, metadata={
        "type": "integer", "description": "the version the approval signature signed"})


class RequiredApprovalOut(Schema):
    slot = fields.String()
    role = fields.String(metadata={"description": "the role that may fill the slot"})
    filled_by = fields.String(allow_none=True, metadata={"description": "username, or null "
                                                                        "while still open"})


class ChangeControlOut(RecordOut):
    title = fields.String()
    change_type = fields.String(metadata={"enum": list(CHANGE_TYPES)})
    risk = fields.String(metadata={"enum": list(RISKS)})
    description = fields.String()
    justification = fields.String()
    implementation_plan = fields.String()
    implementation_notes = fields.String()
    verification_result = fields.String(allow_none=True,
                                        metadata={"enum": [*VERIFICATION_RESULTS, None]})
    verification_notes = fields.String()
    impacted_items = fields.List(fields.Nested(ImpactedItem))
    approvals = fields.List(fields.Nested(ApprovalOut))
    approvals_required = fields.List(fields.Nested(RequiredApprovalOut), metadata={
        "description": "every approval the risk level requires, and who filled it"})


class ChangeControlCreate(Schema):
    title = _title(required=True)
    change_type = _change_type(required=True)
    risk = _risk(required=True)
    description = _text(load_default="")
    justification = _text(load_default="")
    implementation_plan = _text(load_default="")
    impacted_items = fields.List(fields.Nested(ImpactedItem), load_default=list,
                                 validate=validate.Length(max=MAX_ITEMS))


class ChangeControlChanges(Schema):
    """Only the fields to change (draft only); impacted items have their own endpoints."""
    title = _title()
    change_type = _change_type()
    risk = _risk()
    description = _text()
    justification = _text()
    implementation_plan = _text()


class ImpactedItemAdd(ImpactedItem):
    reason = _reason()
    version = VERSION


class ImpactedItemRemoval(Schema):
    reason = _reason()
    version = VERSION


class ImplementationIn(Schema):
    notes = fields.String(required=True, validate=validate.Length(min=1, max=TEXT_MAX),
                          metadata={"description": "how the change was implemented"})
    reason = _reason()


class VerificationIn(Schema):
    result = fields.String(required=True, validate=validate.OneOf(VERIFICATION_RESULTS))
    notes = _text(load_default="")
    reason = _reason()


class ChangeControlQuery(Schema):
    state = fields.String(validate=validate.Length(max=40))
    risk = _risk()
    change_type = _change_type()
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)
