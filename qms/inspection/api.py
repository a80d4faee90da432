"""Inspection plans, inspection lots, results, deviations from inspections and the supplier
scorecard over HTTP. Read, edit (plans in draft), transitions and history are the generic
record endpoints (qms.records.api)."""
from __future__ import annotations

from flask import g

from qms.api import api
from qms.api.spec import endpoint
from qms.context import db_session, state
from qms.errors import InvalidInput
from qms.inspection import decisions, plans, results, scorecard, service
from qms.inspection.models import INSPECTION_PLANS, INSPECTIONS
from qms.inspection.schemas import (DeviationFromInspection, DeviationLinkOut, InspectionOpen,
                                    InspectionOut, InspectionQuery, PlanChanges, PlanCreate,
                                    PlanOut, PlanQuery, ResultsRequest, ScorecardOut,
                                    ScorecardQuery)
from qms.materials.models import SUPPLIERS
from qms.records.api import record_document, record_routes
from qms.records.service import find_record

PLANS_TAG, INSPECTIONS_TAG = INSPECTION_PLANS.collection, INSPECTIONS.collection


@endpoint(api, "/inspection-plans", "POST", summary="Draft an inspection plan", tag=PLANS_TAG,
          permission="inspection_plan.manage", body=PlanCreate, response=PlanOut, status=201,
          errors=(409,))
def create_plan_view(body):
    """Revision 1 in state draft, numbered IP-YYYY-NNNNN. Unknown material, limits out of
    order, duplicate characteristic codes or JSON numbers for limits -> 422 naming the
    field (``characteristics.0.lsl``)."""
    session, user = db_session(), g.api_user
    plan = plans.create_plan(session, state().workflows.get(INSPECTION_PLANS.name), user, body)
    return record_document(plan, PlanOut, user), 201


@endpoint(api, "/inspection-plans", "GET", summary="List inspection plans", tag=PLANS_TAG,
          permission="record.read", query=PlanQuery, response=PlanOut, many=True)
def list_plans_view(query):
    """Newest first; filter by state, material and stage."""
    return [record_document(p, PlanOut, g.api_user) for p in plans.list_plans(db_session(),
                                                                             **query)]


@endpoint(api, "/inspection-plans/<number>/revisions", "POST",
          summary="Start the next revision of an effective plan", tag=PLANS_TAG,
          permission="inspection_plan.manage", body=PlanChanges, response=PlanOut, status=201,
          errors=(404, 409))
def new_revision_view(number: str, body):
    """A draft copy with revision + 1 (and the given changes; ``{}`` copies unchanged) that
    supersedes this plan once approved; approval needs an approved change control naming
    this plan."""
    session, user = db_session(), g.api_user
    plan = find_record(session, INSPECTION_PLANS, number, for_update=True)
    draft = plans.new_revision(session, state().workflows.get(INSPECTION_PLANS.name), user, plan,
                               body)
    return record_document(draft, PlanOut, user), 201


@endpoint(api, "/inspections", "POST", summary="Open an inspection lot", tag=INSPECTIONS_TAG,
          permission="inspection.open", body=InspectionOpen, response=InspectionOut,
          status=201, errors=(409,))
def open_inspection_view(body):
    """Against a received lot (incoming) or a batch (in process with its operation, final),
    by the named plan or the effective plan of the stage; the sample size comes from the
    plan (fixed, or the AQL plan for the lot size)."""
    session, user = db_session(), g.api_user
    inspection = service.open_inspection(session, state().workflows.get(INSPECTIONS.name),
                                         user, body)
    return record_document(inspection, InspectionOut, user), 201


@endpoint(api, "/inspections", "GET", summary="List inspection lots", tag=INSPECTIONS_TAG,
          permission="record.read", query=InspectionQuery, response=InspectionOut, many=True)
def list_inspections_view(query):
    """Newest first; filter by state, stage, lot, batch, material and plan."""
    found = service.list_inspections(db_session(), **query)
    return [record_document(i, InspectionOut, g.api_user) for i in found]


@endpoint(api, "/inspections/<number>/results", "POST", summary="Record results",
          tag=INSPECTIONS_TAG, permission="inspection.record", body=ResultsRequest,
          response=InspectionOut, status=201, errors=(404, 409))
def record_results_view(number: str, body):
    """Each value is judged against the inspection's limits as recorded (conforming or not).
    Measured values are decimal strings; a JSON number is refused. A correction names the
    result it corrects (``corrects``) and a reason; the original stays, superseded. Any bad
    entry -> 422 naming ``results.<i>.<field>`` and nothing is recorded."""
    session, user = db_session(), g.api_user
    inspection = find_record(session, INSPECTIONS, number, for_update=True)
    results.record_results(session, inspection, user, body["results"])
    return record_document(inspection, InspectionOut, user), 201


@endpoint(api, "/inspections/<number>/deviation", "POST",
          summary="Raise a deviation from an inspection", tag=INSPECTIONS_TAG,
          permission="deviation.raise", body=DeviationFromInspection,
          response=DeviationLinkOut, status=201, errors=(404, 409))
def raise_deviation_view(number: str, body):
    """For an inspection with nonconforming results or a rejection, once: the deviation
    names the inspected lot or batch (which goes on hold) and the inspection links it."""
    session, user = db_session(), g.api_user
    inspection = find_record(session, INSPECTIONS, number, for_update=True)
    deviation = decisions.raise_inspection_deviation(session, inspection, user, body)
    return {"deviation": deviation.number,
            "inspection": record_document(inspection, InspectionOut, user)}, 201


@endpoint(api, "/suppliers/<code>/scorecard", "GET", summary="Supplier scorecard",
          tag="suppliers", permission="record.read", query=ScorecardQuery,
          response=ScorecardOut, errors=(404,))
def scorecard_view(code: str, query):
    """Incoming inspections of the supplier's lots accepted and rejected in the period (by
    decision date, UTC, both ends included), those opened in it still open, and the
    acceptance rate."""
    if query["from_"] > query["to"]:
        raise InvalidInput("from is after to", field="from")
    session = db_session()
    supplier = find_record(session, SUPPLIERS, code)
    return ScorecardOut().dump(scorecard.supplier_scorecard(session, supplier, query["from_"],
                                                            query["to"]))


record_routes(INSPECTION_PLANS, PlanOut, changes_schema=PlanChanges,
              edit_permission="inspection_plan.manage")
record_routes(INSPECTIONS, InspectionOut)
