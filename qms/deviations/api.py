"""Deviations over HTTP: raise, list, edit by state, name more lots; read, transitions and
history are the generic record endpoints (qms.records.api)."""
from __future__ import annotations

from typing import Any

from flask import g

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session, state
from qms.deviations.models import DEVIATIONS, Deviation
from qms.deviations.schemas import (DeviationCreate, DeviationEdit, DeviationOut,
                                    DeviationQuery, NameLotsRequest, RemoveLotRequest)
from qms.deviations.service import (create_deviation, edit_deviation, list_deviations,
                                    name_lots, remove_lot)
from qms.identity.models import User
from qms.records.api import record_document, record_routes
from qms.records.service import find_record

TAG = DEVIATIONS.collection


def deviation_document(deviation: Deviation, user: User) -> dict[str, Any]:
    return record_document(deviation, DeviationOut, user)


@endpoint(api, "/deviations", "POST", summary="Raise a deviation", tag=TAG,
          permission="deviation.raise", body=DeviationCreate, response=DeviationOut,
          status=201, errors=(409,))
def create_deviation_view(body):
    """Creates DEV-YYYY-NNNNN in state open; every lot named (a batch as its output lot)
    goes on hold in the same transaction. Unknown lot or batch numbers: 422."""
    session, user = db_session(), g.api_user
    lots, batches = body.pop("lots"), body.pop("batches")
    deviation = create_deviation(session, state().workflows.get(DEVIATIONS.name), user, body,
                                 lots=lots, batches=batches)
    return deviation_document(deviation, user), 201


@endpoint(api, "/deviations", "GET", summary="List deviations", tag=TAG,
          permission="record.read", query=DeviationQuery, response=DeviationOut, many=True)
def list_deviations_view(query):
    """Newest first; filter by state, severity, kind and a named lot or batch number."""
    return [deviation_document(d, g.api_user) for d in list_deviations(db_session(), **query)]


@endpoint(api, "/deviations/<number>", "PATCH", summary="Edit (reason required)", tag=TAG,
          permission="deviation.raise", body=DeviationEdit, response=DeviationOut,
          errors=(404, 409))
def edit_deviation_view(number: str, body):
    """While open: title, description, kind, severity, occurred_on (deviation.raise). While
    in investigation: investigation, root_cause, impact_assessment, capa_required (needs
    deviation.investigate). A field of the other state: 422."""
    session, app_state, user = db_session(), state(), g.api_user
    deviation = find_record(session, DEVIATIONS, number, for_update=True)
    edit_deviation(session, app_state.workflows.get(DEVIATIONS.name), app_state.security.roles,
                   deviation, user, body["changes"], body["reason"],
                   expected_version=body["version"])
    return deviation_document(deviation, user)


@endpoint(api, "/deviations/<number>/lots", "POST", summary="Name more affected lots",
          tag=TAG, permission="deviation.raise", body=NameLotsRequest, response=DeviationOut,
          errors=(404, 409))
def name_deviation_lots_view(number: str, body):
    """While open or in investigation: name more lots or batches (reason required); each
    goes on hold. Lots already named are skipped; naming nothing new is 422."""
    session, user = db_session(), g.api_user
    deviation = find_record(session, DEVIATIONS, number, for_update=True)
    name_lots(session, deviation, user, lots=body["lots"], batches=body["batches"],
              reason=body["reason"])
    return deviation_document(deviation, user)


record_routes(DEVIATIONS, DeviationOut)


@endpoint(api, "/deviations/<number>/lots/removals", "POST",
          summary="Remove a lot named by mistake", tag=TAG, permission="deviation.close",
          body=RemoveLotRequest, response=DeviationOut, errors=(404, 409))
def remove_deviation_lot_view(number: str, body):
    """QA (who closes deviations) removes a lot or batch the deviation named by mistake,
    with a reason, while it is open or in investigation; the removal is kept beside the
    naming, and the lot's hold ends unless another open deviation names it or its batch is
    on hold."""
    session, user = db_session(), g.api_user
    deviation = find_record(session, DEVIATIONS, number, for_update=True)
    remove_lot(session, deviation, user, body["lot_number"], body["reason"])
    return deviation_document(deviation, user)
