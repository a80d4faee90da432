"""CAPA over HTTP: create, list, edit, add and complete actions; read, transitions (the
effectiveness result included) and history are the generic record endpoints."""
from __future__ import annotations

from flask import g

from qms.api import api
from qms.api.spec import endpoint
from qms.capa.models import CAPAS
from qms.capa.schemas import (ActionCompletion, ActionCreate, CapaCreate, CapaEdit, CapaOut,
                              CapaQuery)
from qms.capa.service import add_action, complete_action, create_capa, edit_capa, list_capas
from qms.context import db_session, state
from qms.records.api import record_document, record_routes
from qms.records.service import find_record

TAG = CAPAS.collection


@endpoint(api, "/capas", "POST", summary="Open a CAPA", tag=TAG, permission="capa.manage",
          body=CapaCreate, response=CapaOut, status=201)
def create_capa_view(body):
    """Creates CAPA-YYYY-NNNNN in state open. The owner must be an active user who may act
    on CAPA; a deviation source must name an existing, not cancelled deviation."""
    session, app_state, user = db_session(), state(), g.api_user
    capa = create_capa(session, app_state.workflows.get(CAPAS.name), app_state.security.roles,
                       user, body)
    return record_document(capa, CapaOut, user), 201


@endpoint(api, "/capas", "GET", summary="List CAPA", tag=TAG, permission="record.read",
          query=CapaQuery, response=CapaOut, many=True)
def list_capas_view(query):
    """Newest first; filter by state, source, source_reference and owner."""
    return [record_document(c, CapaOut, g.api_user) for c in list_capas(db_session(), **query)]


@endpoint(api, "/capas/<number>", "PATCH", summary="Edit (reason required)", tag=TAG,
          permission="capa.manage", body=CapaEdit, response=CapaOut, errors=(404, 409))
def edit_capa_view(number: str, body):
    """While open or implementing; source and reference are fixed at creation."""
    session, app_state, user = db_session(), state(), g.api_user
    capa = find_record(session, CAPAS, number, for_update=True)
    edit_capa(session, app_state.workflows.get(CAPAS.name), app_state.security.roles, capa,
              user, body["changes"], body["reason"], expected_version=body["version"])
    return record_document(capa, CapaOut, user)


@endpoint(api, "/capas/<number>/actions", "POST", summary="Add an action", tag=TAG,
          permission="capa.manage", body=ActionCreate, response=CapaOut, status=201,
          errors=(404, 409))
def add_capa_action_view(number: str, body):
    """While open or implementing (reason required): a new CAPA version with action n+1.
    The owner must be a person who may act on CAPA; the due date not in the past."""
    session, user = db_session(), g.api_user
    capa = find_record(session, CAPAS, number, for_update=True)
    add_action(session, state().security.roles, capa, user, **body)
    return record_document(capa, CapaOut, user), 201


@endpoint(api, "/capas/<number>/actions/<int:n>/complete", "POST",
          summary="Complete an action with evidence", tag=TAG, permission="capa.act",
          body=ActionCompletion, response=CapaOut, errors=(404, 409))
def complete_capa_action_view(number: str, n: int, body):
    """While implementing: by the action's owner or a holder of capa.manage (else 403); a
    new CAPA version recording who completed it, when, and the evidence."""
    session, user = db_session(), g.api_user
    capa = find_record(session, CAPAS, number, for_update=True)
    complete_action(session, state().security.roles, capa, user, n, **body)
    return record_document(capa, CapaOut, user)


record_routes(CAPAS, CapaOut)
