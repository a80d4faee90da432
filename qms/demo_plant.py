"""Demo data of a small tablet plant for `qms init --demo`: materials, suppliers, an approved
incoming inspection plan, received lots (one released by its incoming inspection, the others
by QA disposition), a granulation batch and a tablet batch, a deviation holding a lot with its
CAPA, and a change control in draft.

Everything is written through the services, as the API would write it: each step by the demo
user whose role does it in a plant, signatures signed with DEMO_PASSWORD, so that every
record has its versions, signatures and audit events, and segregation of duties holds (the
reviewer drafts, the approver approves; production receives, the inspector performs, QA
decides). The caller's unit of work commits once at the end.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from qms.capa.service import add_action, create_capa
from qms.change_control.service import raise_change_control
from qms.context import AppState
from qms.demo import DEMO_PASSWORD
from qms.deviations.service import create_deviation, edit_deviation
from qms.identity.authentication import find_user
from qms.identity.models import User
from qms.inspection.models import INSPECTIONS, Inspection, results_of
from qms.inspection.plans import create_plan
from qms.inspection.results import record_results
from qms.inspection.service import open_inspection, undecided_incoming
from qms.materials.batches import produce_batch
from qms.dates import today
from qms.materials.models import Batch, Lot
from qms.materials.service import create_material, create_supplier, receive_lot
from qms.records.models import VersionedRecord
from qms.records.service import apply_transition, find_record
from qms.records.workflow import Workflow

# (code, name, kind, unit, shelf life in days, description)
MATERIALS = [
    ("RM-PARA", "Paracetamol 对乙酰氨基酚 (API)", "raw", "kg", 1095,
     "Active pharmaceutical ingredient, Ph. Eur. grade."),
    ("RM-LAC", "乳糖 Lactose monohydrate", "raw", "kg", 1095, "Filler, Ph. Eur. grade."),
    ("PK-BLISTER", "PVC/Alu blister foil", "packaging", "pcs", 730,
     "Rolls of printed blister lidding foil."),
    ("IM-GRAN", "Paracetamol granulate", "intermediate", "kg", 90,
     "Wet granulate for compression, made on line GRAN1."),
    ("FG-PARA500", "Paracetamol 500 mg tablets", "finished", "pcs", 1095,
     "Blistered tablets, 10 per strip."),
]
APPROVED_SUPPLIER = ("SUP-HUAXIN", "Huaxin Pharmaceutical Materials Co., Ltd.",
                     "88 Keji Road, Suzhou, China", "quality@huaxin.example")
PENDING_SUPPLIER = ("SUP-NORDPACK", "Nordpack GmbH", "Hafenstrasse 5, Hamburg, Germany",
                    "qs@nordpack.example")
# assay results of the API lot's samples, in order; the typing error is then corrected
ASSAYS = ("99.8", "100.2", "10.4", "99.6", "100.1")
TYPO, CORRECTED = "10.4", "100.4"


@dataclass
class Plant:
    """The demo users by role, and the application's workflows and security."""
    session: Session
    app: AppState
    reviewer: User
    approver: User
    inspector: User
    production: User

    def sign(self, record_type: str, record: VersionedRecord, signer: User, action: str,
             meaning: str | None = None, reason: str | None = None) -> None:
        """Apply a workflow transition as ``signer`` to the version in hand; signed with the
        demo password when it has a ``meaning``."""
        credentials = None if meaning is None else {
            "username": signer.username, "password": DEMO_PASSWORD, "meaning": meaning}
        apply_transition(self.session, self.app.security, self.workflow(record_type), record,
                         signer, action, reason, credentials, expected_version=record.version)

    def workflow(self, name: str) -> Workflow:
        return self.app.workflows.get(name)


def create_demo_plant(session: Session, app: AppState) -> None:
    """The whole demo plant, in the caller's unit of work. The demo users must exist."""
    plant = Plant(session, app, *(find_user(session, name) for name in
                                  ("qa.reviewer", "qa.approver", "inspector", "production")))
    _master_data(plant)
    plan = _incoming_plan(plant)
    api_lot = _receive(plant, "RM-PARA", "25", "HX-PA-2401")
    _inspect_and_accept(plant, api_lot)
    lactose = _receive(plant, "RM-LAC", "100", "HX-LM-2402")
    foil = _receive(plant, "PK-BLISTER", "40", "HX-BF-2403")
    damaged_foil = _receive(plant, "PK-BLISTER", "20", "HX-BF-2404")
    for lot in (lactose, foil):
        plant.sign("lot", lot, plant.approver, "release", "released")
    granulate = _granulation(plant, api_lot, lactose)
    _tableting(plant, granulate, foil)
    _deviation_with_capa(plant, damaged_foil)
    _change_control(plant, plan)


def _master_data(plant: Plant) -> None:
    """The five materials, an approved supplier and one still pending qualification."""
    for code, name, kind, unit, shelf_life, description in MATERIALS:
        create_material(plant.session, plant.app.workflows, plant.reviewer, {
            "code": code, "name": name, "kind": kind, "unit": unit,
            "shelf_life_days": shelf_life, "description": description})
    for code, name, address, contact in (APPROVED_SUPPLIER, PENDING_SUPPLIER):
        supplier = create_supplier(plant.session, plant.app.workflows, plant.reviewer, {
            "code": code, "name": name, "address": address, "contact": contact})
        if code == APPROVED_SUPPLIER[0]:
            plant.sign("supplier", supplier, plant.approver, "approve", "approved")


def _incoming_plan(plant: Plant):
    """The API's incoming plan (AQL 2.5, level II): assay within limits and appearance,
    drafted by the QA reviewer and approved by the QA approver."""
    plan = create_plan(plant.session, plant.workflow("inspection_plan"), plant.reviewer, {
        "material": "RM-PARA", "stage": "incoming", "operation": None,
        "title": "Incoming inspection of Paracetamol API", "sample_size": None,
        "inspection_level": "II", "aql": Decimal("2.5"), "characteristics": [
            {"code": "ASSAY", "name": "Assay (dried basis)", "type": "numeric", "unit": "%",
             "lsl": "99.0", "usl": "101.0", "target": "100.0", "decimals": 1},
            {"code": "APPEAR", "name": "Appearance: white crystalline powder",
             "type": "attribute"}]})
    plant.sign("inspection_plan", plan, plant.reviewer, "submit")
    plant.sign("inspection_plan", plan, plant.approver, "approve", "approved")
    return plan


def _receive(plant: Plant, material: str, quantity: str, supplier_lot: str) -> Lot:
    """Production receives a lot in quarantine from the approved supplier."""
    return receive_lot(plant.session, plant.app.workflows, plant.app.numbering,
                       plant.production, {"material": material, "supplier": APPROVED_SUPPLIER[0],
                                          "quantity": Decimal(quantity),
                                          "unit": _unit(material),
                                          "supplier_lot": supplier_lot})


def _unit(material: str) -> str:
    return next(unit for code, _, _, unit, _, _ in MATERIALS if code == material)


def _inspect_and_accept(plant: Plant, lot: Lot) -> Inspection:
    """The incoming inspection opened on receipt: the inspector records every sample (one
    value corrected, with its reason) and signs it as performed; QA accepts it, which
    releases the lot."""
    inspection = find_record(plant.session, INSPECTIONS, undecided_incoming(plant.session,
                                                                            lot.id))
    samples = range(1, inspection.sample_size + 1)
    record_results(plant.session, inspection, plant.inspector,
                   [{"characteristic": "ASSAY", "sample": n,
                     "value": Decimal(ASSAYS[(n - 1) % len(ASSAYS)])} for n in samples]
                   + [{"characteristic": "APPEAR", "sample": n, "passed": True}
                      for n in samples])
    typo = next(r for r in results_of(inspection) if r.value == Decimal(TYPO))
    record_results(plant.session, inspection, plant.inspector, [{
        "characteristic": "ASSAY", "value": Decimal(CORRECTED), "corrects": typo.seq,
        "reason": f"transcription error: the printout reads {CORRECTED}"}])
    plant.sign("inspection", inspection, plant.inspector, "complete", "performed")
    plant.sign("inspection", inspection, plant.approver, "accept", "approved")
    return inspection


def _granulation(plant: Plant, api_lot: Lot, lactose: Lot) -> Batch:
    """Production granulates API and lactose; the granulate passes its final (release)
    testing, production reviews the batch record and QA releases the batch, which releases
    the granulate for compression."""
    batch = produce_batch(plant.session, plant.app.workflows, plant.app.numbering,
                          plant.production, {
                              "material": "IM-GRAN", "line": "GRAN1", "quantity": Decimal("80"),
                              "unit": "kg", "inputs": [
                                  {"lot_number": api_lot.number, "quantity": Decimal("20")},
                                  {"lot_number": lactose.number, "quantity": Decimal("60")}]})
    plant.sign("batch", batch, plant.production, "finish")
    _release_testing(plant, batch)
    plant.sign("batch", batch, plant.production, "submit_for_release", "reviewed")
    plant.sign("batch", batch, plant.approver, "release", "released")
    return batch


def _release_testing(plant: Plant, batch: Batch) -> None:
    """The granulate's final inspection under its approved plan (loss on drying within
    limits), performed by the inspector and accepted by QA."""
    plan = create_plan(plant.session, plant.workflow("inspection_plan"), plant.reviewer, {
        "material": "IM-GRAN", "stage": "final", "operation": None,
        "title": "Release testing of Paracetamol granulate", "sample_size": 1,
        "inspection_level": None, "aql": None, "characteristics": [
            {"code": "LOD", "name": "Loss on drying", "type": "numeric", "unit": "%",
             "lsl": None, "usl": "2.0", "target": None, "decimals": 1}]})
    plant.sign("inspection_plan", plan, plant.reviewer, "submit")
    plant.sign("inspection_plan", plan, plant.approver, "approve", "approved")
    inspection = open_inspection(plant.session, plant.workflow("inspection"), plant.inspector,
                                 {"stage": "final", "batch_number": batch.number})
    record_results(plant.session, inspection, plant.inspector,
                   [{"characteristic": "LOD", "sample": 1, "value": Decimal("1.2")}])
    plant.sign("inspection", inspection, plant.inspector, "complete", "performed")
    plant.sign("inspection", inspection, plant.approver, "accept", "approved")


def _tableting(plant: Plant, granulate: Batch, foil: Lot) -> Batch:
    """Production compresses and blisters tablets from the granulate; the batch stays in
    production (its release is QA's decision)."""
    return produce_batch(plant.session, plant.app.workflows, plant.app.numbering,
                         plant.production, {
                             "material": "FG-PARA500", "line": "TAB1",
                             "quantity": Decimal("100000"), "unit": "pcs", "inputs": [
                                 {"lot_number": granulate.number, "quantity": Decimal("55")},
                                 {"lot_number": foil.number, "quantity": Decimal("12")}]})


def _deviation_with_capa(plant: Plant, lot: Lot) -> None:
    """Production reports damaged foil rolls (the lot goes on hold); QA investigates and
    opens a CAPA with one action owned by production."""
    session, current = plant.session, today()
    workflow = plant.workflow("deviation")
    deviation = create_deviation(session, workflow, plant.production, {
        "title": "Damaged cartons of blister foil on receipt",
        "description": "Two of the twenty cartons were crushed and wet; the rolls inside "
                       "show creases. 两箱外包装破损受潮。",
        "kind": "unplanned", "severity": "minor", "occurred_on": current},
        lots=[lot.number])
    plant.sign("deviation", deviation, plant.production, "submit_for_investigation")
    edit_deviation(session, workflow, plant.app.security.roles, deviation, plant.reviewer, {
        "investigation": "Cartons were stacked five high in the truck, above the carrier's "
                         "limit of three.",
        "root_cause": "The transport instruction does not state the stacking limit.",
        "capa_required": True}, "investigation recorded")
    capa = create_capa(session, plant.workflow("capa"), plant.app.security.roles,
                       plant.reviewer, {
                           "source": "deviation", "source_reference": deviation.number,
                           "title": "State the stacking limit in the transport instruction",
                           "problem_statement": "Foil cartons arrive crushed when stacked "
                                                "above three.",
                           "owner": plant.production.username,
                           "effectiveness_due_on": current + timedelta(days=90)})
    add_action(session, plant.app.security.roles, capa, plant.reviewer,
               description="Add the stacking limit to the supplier's transport instruction",
               owner=plant.production.username, due_on=current + timedelta(days=30),
               reason="planned with the supplier")


def _change_control(plant: Plant, plan) -> None:
    """A low-risk change in draft: add particle size to the API's incoming plan."""
    raise_change_control(plant.session, plant.workflow("change_control"), plant.reviewer, {
        "title": "Add particle size to the incoming inspection of Paracetamol",
        "change_type": "specification", "risk": "low",
        "description": "Add a laser-diffraction particle size characteristic (d90).",
        "justification": "Compression problems were traced to coarse API lots.",
        "implementation_plan": "New revision of the plan once approved.",
        "impacted_items": [{"kind": "inspection_plan", "number": plan.number}]})
