"""Materials, suppliers, lots and batches over HTTP: create (receive, produce) and list
here, batch inputs and the trace; read, edit, transitions and history are the generic record
endpoints (qms.records.api)."""
from __future__ import annotations

from flask import Response, g

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session, state
from qms.materials.batches import (add_batch_inputs, edit_batch, list_batches,
                                   produce_batch, reverse_batch_input)
from qms.materials.models import BATCHES, LOTS, MATERIALS, SUPPLIERS
from qms.materials.schemas import (BatchChanges, BatchCreate, BatchInputReversal,
                                   BatchInputsRequest, BatchOut, BatchQuery, LotChanges,
                                   LotOut, LotQuery, LotReceive,
                                   MaterialChanges, MaterialCreate, MaterialOut, MaterialQuery,
                                   SupplierChanges, SupplierCreate, SupplierOut, SupplierQuery,
                                   TraceOut, TraceQuery)
from qms.materials.service import (correct_lot, create_material, create_supplier,
                                   list_lots, list_materials, list_suppliers, receive_lot)
from qms.materials.trace import trace_json
from qms.records.api import record_document, record_routes
from qms.records.service import find_record


def _created(record, schema):
    return record_document(record, schema, g.api_user), 201


@endpoint(api, "/materials", "POST", summary="Create a material", tag="materials",
          permission="material.manage", body=MaterialCreate, response=MaterialOut, status=201,
          errors=(409,))
def create_material_view(body):
    """The code is the material's number (409 when taken); the material starts active."""
    return _created(create_material(db_session(), state().workflows, g.api_user, body),
                    MaterialOut)


@endpoint(api, "/materials", "GET", summary="List materials", tag="materials",
          permission="record.read", query=MaterialQuery, response=MaterialOut, many=True)
def list_materials_view(query):
    """In code order; filter by state and kind."""
    return [record_document(m, MaterialOut, g.api_user)
            for m in list_materials(db_session(), **query)]


@endpoint(api, "/suppliers", "POST", summary="Create a supplier", tag="suppliers",
          permission="supplier.manage", body=SupplierCreate, response=SupplierOut, status=201,
          errors=(409,))
def create_supplier_view(body):
    """The code is the supplier's number; a new supplier is pending until QA approves it
    (transition approve, signed)."""
    return _created(create_supplier(db_session(), state().workflows, g.api_user, body),
                    SupplierOut)


@endpoint(api, "/suppliers", "GET", summary="List suppliers", tag="suppliers",
          permission="record.read", query=SupplierQuery, response=SupplierOut, many=True)
def list_suppliers_view(query):
    """In code order; filter by approval status (state)."""
    return [record_document(s, SupplierOut, g.api_user)
            for s in list_suppliers(db_session(), **query)]


@endpoint(api, "/lots", "POST", summary="Receive a lot", tag="lots", permission="lot.receive",
          body=LotReceive, response=LotOut, status=201, errors=(409,))
def receive_lot_view(body):
    """A lot received from an approved or conditional supplier (409 for a pending or
    blocked supplier, or an inactive material), in quarantine, numbered by the lot rule of
    config/numbering.toml. The unit must be the material's (no conversion). An incoming
    inspection opens when an effective incoming plan exists."""
    app_state = state()
    return _created(receive_lot(db_session(), app_state.workflows, app_state.numbering,
                                g.api_user, body), LotOut)


@endpoint(api, "/lots", "GET", summary="List lots", tag="lots", permission="record.read",
          query=LotQuery, response=LotOut, many=True)
def list_lots_view(query):
    """Received and produced lots, newest first; filter by status, material, supplier and
    origin."""
    return [record_document(lot, LotOut, g.api_user) for lot in list_lots(db_session(), **query)]


@endpoint(api, "/lots/<number>/trace", "GET", summary="Backward or forward trace",
          tag="lots", permission="record.read", query=TraceQuery, response=TraceOut,
          errors=(404,))
def trace_lot_view(number: str, query):
    """The whole genealogy graph reachable from the lot: backward (what went into it, down
    to the received lots) or forward (where it went: the recall scope). Each lot with its
    material, supplier, status and depth (shortest distance from the lot); edges go from the
    consumed lot to the lot made from it, one per consumption entry."""
    # the database writes the answer's JSON (TraceOut documents it): parsing and dumping
    # 10,000 nodes in Python would cost several times the trace itself
    return Response(trace_json(db_session(), number, query["direction"]),
                    mimetype="application/json")


@endpoint(api, "/batches", "POST", summary="Produce a batch", tag="batches",
          permission="batch.manage", body=BatchCreate, response=BatchOut, status=201,
          errors=(409,))
def produce_batch_view(body):
    """A batch of an intermediate or finished material, numbered by the batch rule, with
    its output lot (same number, in quarantine) and the lots it consumed. Input lots must be
    released, in date, in their own unit and not over-consumed; a refused input is named as
    inputs.N.<field> and nothing is written."""
    app_state = state()
    return _created(produce_batch(db_session(), app_state.workflows, app_state.numbering,
                                  g.api_user, body), BatchOut)


@endpoint(api, "/batches", "GET", summary="List batches", tag="batches",
          permission="record.read", query=BatchQuery, response=BatchOut, many=True)
def list_batches_view(query):
    """Newest first; filter by batch state, output lot status, material and line."""
    return [record_document(b, BatchOut, g.api_user)
            for b in list_batches(db_session(), **query)]


@endpoint(api, "/batches/<number>/inputs", "POST", summary="Record consumed lots",
          tag="batches", permission="batch.manage", body=BatchInputsRequest,
          response=BatchOut, errors=(404, 409))
def add_batch_inputs_view(number: str, body):
    """More consumed lots for a batch still in production (409 otherwise), under the same
    rules as at production; a lot made from this batch is refused (no cycles)."""
    session, user = db_session(), g.api_user
    batch = find_record(session, BATCHES, number, for_update=True)
    add_batch_inputs(session, batch, user, body["inputs"], reason=body["reason"])
    return record_document(batch, BatchOut, user)


@endpoint(api, "/batches/<number>/inputs/reversals", "POST",
          summary="Reverse a consumption booked in error", tag="batches",
          permission="batch.manage", body=BatchInputReversal, response=BatchOut,
          errors=(404, 409))
def reverse_batch_input_view(number: str, body):
    """A reversing entry (negative quantity, reason required) beside the original, which
    stays; only in production or produced (409 after submission for release). The lot's
    quantity left grows back; the trace keeps both entries (a recall errs on inclusion)."""
    session, user = db_session(), g.api_user
    batch = find_record(session, BATCHES, number, for_update=True)
    reverse_batch_input(session, batch, user, body["lot_number"], body["quantity"],
                        body["reason"])
    return record_document(batch, BatchOut, user)


record_routes(MATERIALS, MaterialOut, changes_schema=MaterialChanges,
              edit_permission="material.manage")
record_routes(SUPPLIERS, SupplierOut, changes_schema=SupplierChanges,
              edit_permission="supplier.manage")
# a produced lot is corrected through its batch: correct_lot refuses it, edit_batch versions
# both the batch and its lot
record_routes(LOTS, LotOut, changes_schema=LotChanges, edit_permission="lot.edit",
              edit=correct_lot)
record_routes(BATCHES, BatchOut, changes_schema=BatchChanges, edit_permission="batch.manage",
              edit=edit_batch)
