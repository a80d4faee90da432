"""Change controls over HTTP: list and raise, impacted items, implementation and
verification records here; read, edit, transitions (submit, approve, reject, implement,
verify, close, ...) and history are the generic record endpoints (qms.records.api)."""
from __future__ import annotations

from flask import g

from qms.api import api
from qms.api.spec import endpoint
from qms.change_control.models import CHANGE_CONTROLS
from qms.change_control.schemas import (ChangeControlChanges, ChangeControlCreate,
                                        ChangeControlOut, ChangeControlQuery, ImpactedItemAdd,
                                        ImpactedItemRemoval, ImplementationIn, VerificationIn)
from qms.change_control.service import (add_impacted_item, list_change_controls,
                                        raise_change_control, record_implementation,
                                        record_verification, remove_impacted_item)
from qms.context import db_session, state
from qms.records.api import record_document, record_routes
from qms.records.service import find_record

TAG = CHANGE_CONTROLS.collection
ITEMS = "/change-controls/<number>/impacted-items"


def _workflow():
    return state().workflows.get(CHANGE_CONTROLS.name)


def _locked(number: str):
    return find_record(db_session(), CHANGE_CONTROLS, number, for_update=True)


def _answer(record, status: int = 200):
    return record_document(record, ChangeControlOut, g.api_user), status


@endpoint(api, "/change-controls", "POST", summary="Raise a change control", tag=TAG,
          permission="change.raise", body=ChangeControlCreate, response=ChangeControlOut,
          status=201)
def raise_change_control_view(body):
    """Creates version 1 in state draft, numbered CC-YYYY-NNNNN. Every impacted item must
    exist (422 naming impacted_items.<n>.number otherwise)."""
    record = raise_change_control(db_session(), _workflow(), g.api_user, body)
    return _answer(record, 201)


@endpoint(api, "/change-controls", "GET", summary="List change controls", tag=TAG,
          permission="record.read", query=ChangeControlQuery, response=ChangeControlOut,
          many=True)
def list_change_controls_view(query):
    """Newest first; filter by state, risk and change_type."""
    records = list_change_controls(db_session(), **query)
    return [record_document(r, ChangeControlOut, g.api_user) for r in records]


@endpoint(api, ITEMS, "POST", summary="Name one more impacted item (draft only)", tag=TAG,
          permission="change.raise", body=ImpactedItemAdd, response=ChangeControlOut,
          status=201, errors=(404, 409))
def add_impacted_item_view(number: str, body):
    """The item must exist; a reason is required; makes a new version."""
    record = add_impacted_item(db_session(), _workflow(), _locked(number), g.api_user, body,
                               body["reason"], expected_version=body["version"])
    return _answer(record, 201)


@endpoint(api, ITEMS + "/<kind>/<item_number>", "DELETE",
          summary="Stop naming an impacted item (draft only)", tag=TAG,
          permission="change.raise", body=ImpactedItemRemoval, response=ChangeControlOut,
          errors=(404, 409))
def remove_impacted_item_view(number: str, kind: str, item_number: str, body):
    """A reason is required; makes a new version (the item stays in the history)."""
    record = remove_impacted_item(db_session(), _workflow(), _locked(number), g.api_user,
                                  kind, item_number, body["reason"],
                                  expected_version=body["version"])
    return _answer(record)


@endpoint(api, "/change-controls/<number>/implementation", "POST",
          summary="Record how an approved change was implemented", tag=TAG,
          permission="change.implement", body=ImplementationIn, response=ChangeControlOut,
          errors=(404, 409))
def record_implementation_view(number: str, body):
    """While approved, before the implementer signs the implement transition (which needs
    these notes). A reason is required; makes a new version."""
    record = record_implementation(db_session(), _locked(number), g.api_user, body["notes"],
                                   body["reason"])
    return _answer(record)


@endpoint(api, "/change-controls/<number>/verification", "POST",
          summary="Record the effectiveness verification of an implemented change", tag=TAG,
          permission="change.verify", body=VerificationIn, response=ChangeControlOut,
          errors=(404, 409))
def record_verification_view(number: str, body):
    """While implemented, before the verify transition (needs result effective) or reopen.
    A reason is required; makes a new version."""
    record = record_verification(db_session(), _locked(number), g.api_user, body["result"],
                                 body["notes"], body["reason"])
    return _answer(record)


record_routes(CHANGE_CONTROLS, ChangeControlOut, changes_schema=ChangeControlChanges,
              edit_permission="change.raise")
