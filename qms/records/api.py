"""The generic endpoints of every controlled record type, implemented once:
``GET /<collection>/{number}``, ``PATCH /<collection>/{number}`` (``{"changes", "reason"}``),
``POST /<collection>/{number}/transitions`` and ``GET /<collection>/{number}/history``.

A record type's api module calls ``record_routes`` with its response and changes schemas.
Every record is returned with the DESIGN.md "Record shapes": number, state, version,
created_at, created_by, its own fields, its signatures and the transitions open from its
current state.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, request
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Session

from audit.canonical import utc_timestamp
from qms.api import api
from qms.api.spec import SafeInteger, endpoint, endpoint_name, load, refuse_unfit_input
from qms.context import db_session, state
from qms.errors import DomainError
from qms.esign.models import Signature
from qms.esign.service import manifestation, refusal_before_password, signatures_of
from qms.identity.models import User
from qms.records.models import RecordType, VersionedRecord
from qms.records.service import (apply_transition, check_transition, current_content_hash,
                                 find_record, record_history, segregation_checks,
                                 update_record)

# the permission every record endpoint checks first
RECORD_READ = "record.read"
REASON = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
VERSION = SafeInteger(load_default=None, allow_none=True,
                      metadata={"description": "the version the client read; 409 if the "
                                               "record has changed since. A signed "
                                               "transition must name it (422 otherwise): "
                                               "the signer names the version they saw"})


class SignatureOut(Schema):
    signer = fields.String()
    name = fields.String()
    meaning = fields.String()
    at = fields.String(metadata={"description": "UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ, as signed"})
    record_version = fields.Integer()
    content_hash = fields.String()
    key_id = fields.String()
    signature = fields.String(metadata={"description": "base64 Ed25519 signature"})
    signed_payload = fields.String(metadata={"description": "the signed canonical JSON"})
    manifestation = fields.Dict()
    valid_for_current_version = fields.Boolean(
        metadata={"description": "false when the content changed since signing"})


class TransitionOut(Schema):
    action = fields.String()
    to = fields.String()
    meaning = fields.String(allow_none=True)
    permission = fields.String()
    reason_required = fields.Boolean()
    allowed = fields.Boolean(metadata={"description": "the caller holds the permission"})


class RecordOut(Schema):
    """Fields every controlled record has; a record type's schema adds its own."""
    number = fields.String()
    state = fields.String()
    version = fields.Integer()
    created_at = fields.DateTime()
    created_by = fields.String()
    updated_at = fields.DateTime()
    updated_by = fields.String()
    changed_since_signing = fields.Boolean()
    signatures = fields.List(fields.Nested(SignatureOut))
    transitions = fields.List(fields.Nested(TransitionOut))


class SignatureIn(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=150))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    meaning = fields.String(required=True, validate=validate.Length(min=1, max=20))


class TransitionRequest(Schema):
    action = fields.String(required=True, validate=validate.Length(min=1, max=40))
    reason = REASON
    signature = fields.Nested(SignatureIn, load_default=None, allow_none=True)
    version = VERSION


class VersionOut(Schema):
    version = fields.Integer()
    action = fields.String()
    state = fields.String()
    changed_at = fields.DateTime()
    changed_by = fields.String()
    reason = fields.String(allow_none=True)
    content = fields.Dict()
    content_hash = fields.String()
    changes = fields.Dict(metadata={"description": "field -> {before, after} against the "
                                                   "previous version"})


class HistorySignatureOut(SignatureOut):
    verified = fields.Boolean(metadata={"description": "the Ed25519 signature verifies with "
                                                       "the signer's key over the signed version"})


class HistoryOut(Schema):
    record_type = fields.String()
    number = fields.String()
    version = fields.Integer()
    content_hash = fields.String()
    changed_since_signing = fields.Boolean()
    versions = fields.List(fields.Nested(VersionOut))
    signatures = fields.List(fields.Nested(HistorySignatureOut))


def signature_document(signature: Signature, current_hash: str) -> dict[str, Any]:
    return {"signer": signature.signer, "name": signature.name, "meaning": signature.meaning,
            "at": utc_timestamp(signature.at), "record_version": signature.record_version,
            "content_hash": signature.content_hash, "key_id": signature.key_id,
            "signature": signature.signature, "signed_payload": signature.signed_payload,
            "manifestation": manifestation(signature),
            "valid_for_current_version": signature.content_hash == current_hash}


def record_document(record: VersionedRecord, schema: type[Schema], user: User) -> dict[str, Any]:
    """The record as the API returns it, with the transitions open from its state."""
    registry = state().workflows
    current_hash = current_content_hash(record)
    signatures = [signature_document(s, current_hash)
                  for s in signatures_of(db_session(), record.record_type, record.number)]
    transitions = [{"action": t.action, "to": t.target, "meaning": t.meaning,
                    "permission": t.permission, "reason_required": t.reason_required,
                    "allowed": registry.allows(user.roles, t)}
                   for t in registry.get(record.record_type).transitions_from(record.state)]
    extra = {"signatures": signatures, "transitions": transitions,
             "changed_since_signing": any(not s["valid_for_current_version"] for s in signatures)}
    return schema().dump(_RecordView(record, extra))


class _RecordView:
    """The record with the API's extra fields on top, as the schemas read it (attribute
    names, ``attribute=`` and function fields alike)."""

    def __init__(self, record: VersionedRecord, extra: dict[str, Any]):
        self._record, self._extra = record, extra

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._record, name)


def history_document(record: VersionedRecord) -> dict[str, Any]:
    history = record_history(db_session(), record)
    history["signatures"] = [
        {**signature_document(entry["signature"], history["content_hash"]),
         "verified": entry["verified"]} for entry in history["signatures"]]
    return HistoryOut().dump(history)


def record_routes(record_type: RecordType, schema: type[Schema], *,
                  changes_schema: type[Schema] | None = None,
                  edit_permission: str | None = None,
                  edit: Callable[..., VersionedRecord] = update_record) -> None:
    """Register the generic endpoints for one record type under its collection. An editable
    type must name the permission that edits it (never "any signed-in user"); ``edit`` is
    the operation PATCH calls, update_record's signature, when the type's edits have rules
    or consequences of their own."""
    if changes_schema is not None and not edit_permission:
        raise ValueError(f"{record_type.name}: editing needs an edit_permission")
    _register(record_type, "GET", "", _read_view(record_type, schema), summary="Read one",
              permission=RECORD_READ, response=schema, errors=(404,))
    if changes_schema is not None:
        body = Schema.from_dict({"changes": fields.Nested(changes_schema, required=True),
                                 "reason": REASON, "version": VERSION},
                                name=f"{changes_schema.__name__}Request")
        _register(record_type, "PATCH", "", _edit_view(record_type, schema, edit),
                  summary="Edit own fields (reason required)", permission=edit_permission,
                  body=body, response=schema, errors=(404, 409))
    # record.read first: a caller who may not read the record learns nothing of it, not
    # even whether it exists or its state (the transition's own permission comes next)
    transitions = _register(record_type, "POST", "/transitions",
                            _transition_view(record_type, schema),
                            summary="Take a workflow transition (signed where the workflow "
                                    "says so)",
                            permission=RECORD_READ, body=TransitionRequest, response=schema,
                            errors=(404, 409, 423, 429))
    _TRANSITION_ENDPOINTS[transitions] = record_type
    _register(record_type, "GET", "/history", _history_view(record_type),
              summary="Versions, diffs and signatures", permission=RECORD_READ,
              response=HistoryOut, errors=(404,))


def _register(record_type: RecordType, method: str, suffix: str, view: Callable, *,
              summary: str, **options: Any) -> str:
    """Register ``view``; returns its Flask endpoint."""
    view.__name__ = f"{record_type.name}_{view.__name__}"
    endpoint(api, f"/{record_type.collection}/<number>{suffix}", method, summary=summary,
             tag=record_type.collection, **options)(view)
    return endpoint_name(api, view.__name__, method)


def _read_view(record_type: RecordType, schema: type[Schema]) -> Callable:
    def read(number: str):
        """The record, its signatures and the transitions open from its state."""
        record = find_record(db_session(), record_type, number)
        return record_document(record, schema, g.api_user)
    return read


def _edit_view(record_type: RecordType, schema: type[Schema],
               operation: Callable[..., VersionedRecord]) -> Callable:
    def edit(number: str, body):
        """Change own fields in an editable state; makes a new version. A reason is
        required, and a change that changes nothing is refused."""
        session, user = db_session(), g.api_user
        record = find_record(session, record_type, number, for_update=True)
        operation(session, state().workflows.get(record_type.name), record, user,
                  body["changes"], body["reason"], expected_version=body["version"])
        return record_document(record, schema, user)
    return edit


def _transition_view(record_type: RecordType, schema: type[Schema]) -> Callable:
    def transition(number: str, body):
        """The caller needs the transition's permission; a transition with a meaning needs
        the caller's own username and password and that meaning. A refused signature is
        audited and counts toward lockout (403, or 423 once locked): the endpoint commits
        that refusal before it answers (qms.errors.keeping_writes)."""
        session, app_state, user = db_session(), state(), g.api_user
        record = find_record(session, record_type, number, for_update=True)
        apply_transition(session, app_state.security, app_state.workflows.get(record_type.name),
                         record, user, body["action"], body["reason"], body["signature"],
                         expected_version=body["version"])
        return record_document(record, schema, user)
    return transition


# the record type behind each transitions endpoint, for the signature look-ahead
_TRANSITION_ENDPOINTS: dict[str, RecordType] = {}


def signable_but_for_the_password(reader: Session, user: User) -> bool:
    """For the signature look-ahead (qms.api.sign_ahead), before the request's writer opens:
    True when this request is a record's transition that ``user`` may take, signed, but for
    the password. The checks are the endpoint's own (``user`` may read records, the body is
    valid, the record exists) and the transition's that need no password: its permissions,
    the record's state and version, the reason, the signer's account and the transition's
    segregation of duties. Only then is the password hashed ahead, so that a request refused
    anyway costs no argon2 or scrypt. Reads only; the endpoint checks everything again under
    its locks (and runs the record type's before_transition rules, which lock rows, only
    there)."""
    record_type = _TRANSITION_ENDPOINTS.get(request.endpoint)
    app_state = state()
    if record_type is None or not app_state.security.roles.allows(user.roles, RECORD_READ):
        return False
    try:
        data = request.get_json(silent=True)
        refuse_unfit_input(data)
        body = load(TransitionRequest(), data)
        record = find_record(reader, record_type, request.view_args["number"])
        return _refusal_before_password(reader, record, user, body) is None
    except DomainError:
        return False


def _refusal_before_password(reader: Session, record: VersionedRecord, user: User,
                             body: dict[str, Any]) -> DomainError | None:
    app_state = state()
    transition, _ = check_transition(app_state.security,
                                     app_state.workflows.get(record.record_type), record, user,
                                     body["action"], body["reason"], body["signature"],
                                     body["version"])
    return refusal_before_password(app_state.security, user, body["signature"] or {},
                                   transition.meaning, transition.permission,
                                   segregation_checks(reader, record, transition))


def _history_view(record_type: RecordType) -> Callable:
    def history(number: str):
        """Every version with its diff to the one before, every signature with whether it
        still matches the current content and whether it verifies."""
        return history_document(find_record(db_session(), record_type, number))
    return history
