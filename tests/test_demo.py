"""`qms init --demo` data: a small plant created through the services with real signatures,
idempotent, traceable from the tablets back to the API lot, audit chain intact."""
from __future__ import annotations

from sqlalchemy import select

from qms.capa.models import Capa
from qms.change_control.models import ChangeControl
from qms.demo import DEMO_PASSWORD, create_demo_data
from qms.deviations.models import Deviation
from qms.esign.models import Signature
from qms.inspection.models import Inspection, InspectionPlan
from qms.materials.models import Batch, Lot, Material, Supplier


def _by(session, model, column, value):
    return session.scalars(select(model).where(column == value)).all()


def test_demo_plant_is_created_once_through_the_services(app, db_snapshot):
    with app.app_context():
        create_demo_data()
        first = db_snapshot()
        create_demo_data()
    assert db_snapshot() == first  # the second run writes nothing

    with app.extensions["qms"].db.reading() as session:
        materials = {m.number: m for m in session.scalars(select(Material))}
        assert {"RM-PARA", "RM-LAC", "PK-BLISTER", "IM-GRAN", "FG-PARA500"} <= set(materials)
        assert materials["RM-LAC"].name.startswith("乳糖")
        assert {s.number: s.state for s in session.scalars(select(Supplier))} == {
            "SUP-HUAXIN": "approved", "SUP-NORDPACK": "pending"}

        plans = {p.stage: p for p in session.scalars(select(InspectionPlan))}
        plan = plans["incoming"]
        assert (plan.state, plan.stage, plan.material.number) == ("effective", "incoming",
                                                                  "RM-PARA")
        assert (plans["final"].state, plans["final"].material.number) == ("effective",
                                                                          "IM-GRAN")
        inspections = {i.stage: i for i in session.scalars(select(Inspection))}
        inspection = inspections["incoming"]
        assert inspection.state == "accepted" and inspection.lot.material.number == "RM-PARA"
        assert inspections["final"].state == "accepted"
        api_lot = inspection.lot
        assert api_lot.state == "released"

        lots = {lot.material.number: lot for lot in session.scalars(select(Lot))
                if lot.material.number != "PK-BLISTER"}
        assert lots["RM-LAC"].state == "released"
        assert lots["IM-GRAN"].state == "released"
        assert lots["FG-PARA500"].state == "quarantine"
        foil = sorted(lot.state for lot in _by(session, Lot, Lot.material_id,
                                               materials["PK-BLISTER"].id))
        assert foil == ["on_hold", "released"]

        batches = {b.material.number: b.state for b in session.scalars(select(Batch))}
        assert batches == {"IM-GRAN": "released", "FG-PARA500": "in_production"}

        deviation = session.scalars(select(Deviation)).one()
        assert deviation.state == "in_investigation" and deviation.capa_required is True
        held = [link.lot.state for link in deviation.lot_links]
        assert held == ["on_hold"]
        capa = session.scalars(select(Capa)).one()
        assert (capa.source_reference, capa.state, len(capa.actions)) == (
            deviation.number, "open", 1)
        change = session.scalars(select(ChangeControl)).one()
        assert (change.state, change.risk) == ("draft", "low")
        assert change.impacted_items == [{"kind": "inspection_plan", "number": plan.number}]

        signers = {(s.signer, s.meaning) for s in session.scalars(select(Signature))}
        assert {("qa.approver", "approved"), ("qa.approver", "released"),
                ("inspector", "performed"), ("production", "reviewed")} <= signers
        tablet_lot, api_lot_number = lots["FG-PARA500"].number, api_lot.number

    # the auditor logs in with the demo password and traces the tablets back to the API lot
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": "auditor",
                                                     "password": DEMO_PASSWORD}).get_json()
    trace = client.get(f"/api/v1/lots/{tablet_lot}/trace", query_string={
        "direction": "backward"}, headers={"Authorization": f"Bearer {token['token']}"})
    assert trace.status_code == 200, trace.get_json()
    assert api_lot_number in {node["number"] for node in trace.get_json()["nodes"]}

    from audit.verify import verify_chain
    with app.extensions["qms"].db.engine.connect() as connection:
        result = verify_chain(connection)
    assert not result.problems, (result.first_bad_seq, result.problem)
