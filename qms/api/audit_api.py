"""The audit trail over HTTP: events with filters, chain verification, checkpoints and the
server's checkpoint public key."""
from __future__ import annotations

from flask import g
from marshmallow import Schema, fields, validate

from audit import checkpoints, trail
from qms.api import api
from qms.auditing import verify_trail
from qms.api.schemas import PublicKeyOut
from qms.api.spec import SafeInteger, endpoint
from qms.context import db_session, state
from qms.errors import Conflict, NotFound


class EventQuery(Schema):
    seq_from = SafeInteger(min=1)
    seq_to = SafeInteger(min=1)
    entity_type = fields.String(validate=validate.Length(max=64))
    entity_id = fields.String(validate=validate.Length(max=100))
    actor = fields.String(validate=validate.Length(max=150))
    action = fields.String(validate=validate.Length(max=100),
                           metadata={"description": "a tag, or a parent tag: 'identity.token' "
                                                   "matches 'identity.token.created'"})
    at_from = fields.AwareDateTime()
    at_to = fields.AwareDateTime()
    limit = SafeInteger(load_default=100, min=1, max=1000)
    offset = SafeInteger(load_default=0, min=0)


class AuditEvent(Schema):
    seq = fields.Integer()
    at = fields.String()
    actor = fields.String()
    action = fields.String()
    entity = fields.Dict(allow_none=True)
    reason = fields.String(allow_none=True)
    data = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()


class EventPage(Schema):
    events = fields.List(fields.Nested(AuditEvent))
    count = fields.Integer()


class VerifyReport(Schema):
    ok = fields.Boolean(metadata={"description": "true only for the verdict INTACT"})
    verdict = fields.String(metadata={"enum": ["INTACT", "BROKEN", "UNANCHORED"]})
    anchored_seq = fields.Integer(metadata={"description": "the last checkpoint that "
                                                           "vouched for the chain (0: none)"})
    unanchored_events = fields.Integer(metadata={"description": "events after it, "
                                                                "hash-linked only"})
    events_checked = fields.Integer()
    head_seq = fields.Integer()
    head_hash = fields.String()
    first_bad_seq = fields.Integer(allow_none=True)
    problem = fields.String(allow_none=True)
    checkpoints_checked = fields.Integer()


class CheckpointInfo(Schema):
    seq = fields.Integer()
    hash = fields.String()
    at = fields.String()
    key_id = fields.String()
    site = fields.String(allow_none=True, metadata={"description": "the instance's site id "
                                                                   "(null: written before "
                                                                   "sites existed)"})
    purpose = fields.String(allow_none=True, metadata={
        "enum": ["routine", "export"],
        "description": "export: the checkpoint that closed an export, signed when it was "
                       "made; routine: any other (null: written before purposes existed)"})
    signature = fields.String()


def event_document(event: trail.Event) -> dict:
    entity = {"type": event.entity_type, "id": event.entity_id} if event.entity_type else None
    return {"seq": event.seq, "at": event.at, "actor": event.actor, "action": event.action,
            "entity": entity, "reason": event.reason, "data": event.data,
            "prev_hash": event.prev_hash, "hash": event.hash}


@endpoint(api, "/audit/events", "GET", summary="Audit events, filtered", tag="audit",
          permission="audit.read", query=EventQuery, response=EventPage)
def audit_events(query):
    """Events in seq order; ``action`` matches the tag and every tag below it."""
    events = trail.query_events(db_session().connection(), **query)
    return EventPage().dump({"events": [event_document(e) for e in events], "count": len(events)})


def run_verification() -> dict:
    """The verdict of the whole chain: INTACT, BROKEN or UNANCHORED (no checkpoint
    vouches for it), checked with the current and every retired public key."""
    return VerifyReport().dump(verify_trail(db_session()))


@endpoint(api, "/audit/verify", "GET", summary="Verify the whole chain and its checkpoints",
          tag="audit", permission="audit.read", response=VerifyReport, errors=(503,))
def audit_verify():
    """Walks every event: seq continuity, hash links, stored hashes, canonical form, column
    agreement, the head row, and every checkpoint (signature, site, database row, external
    file and its audit.checkpoint.signed event). Names the first bad seq; UNANCHORED when no
    checkpoint vouches for the chain."""
    return run_verification()


@endpoint(api, "/audit/checkpoints", "GET", summary="Signed checkpoints of the chain head",
          tag="audit", permission="audit.read", response=CheckpointInfo, many=True)
def audit_checkpoints():
    return CheckpointInfo(many=True).dump(checkpoints.list_checkpoints(db_session().connection()))


@endpoint(api, "/audit/checkpoints", "POST", summary="Write a signed checkpoint now",
          tag="audit", permission="audit.checkpoint", response=CheckpointInfo, status=201,
          errors=(409, 503))
def create_checkpoint():
    app_state = state()
    try:
        written = checkpoints.write_checkpoint(
            db_session(), signing_key=app_state.audit_signing_key(),
            file_path=app_state.checkpoint_file, site=app_state.audit_site(),
            actor=g.api_user.username, public_keys=app_state.audit_public_keys())
    except trail.AuditError as error:  # e.g. a site id the trail does not know (restart)
        raise Conflict(str(error)) from None
    if written is None:
        raise Conflict("the audit trail is empty; nothing to checkpoint")
    return CheckpointInfo().dump(written), 201


class PublicKeyQuery(Schema):
    key_id = fields.String(validate=validate.Regexp(r"^[0-9a-f]{16}$"), metadata={
        "description": "a retired key, named by the checkpoints it signed (default: the "
                       "current key)"})


@endpoint(api, "/audit/public-key", "GET", summary="The server's checkpoint-signing public key",
          tag="audit", query=PublicKeyQuery, response=PublicKeyOut, errors=(404, 503))
def audit_public_key(query):
    """Give this to the stand-alone verifier (python -m audit.verify_export); after a key
    rotation, give it the retired keys too (``?key_id=`` of the older checkpoints)."""
    app_state = state()
    if "key_id" not in query:
        return checkpoints.public_key_document(app_state.audit_signing_key().public_key())
    public = app_state.audit_public_keys().get(query["key_id"])
    if public is None:
        raise NotFound(f"no audit signing key {query['key_id']}")
    return checkpoints.public_key_document(public)
