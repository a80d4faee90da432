"""In-process and final inspections of a batch, and new revisions of an effective plan under
change control."""
from __future__ import annotations

from tests.inspection.conftest import MATERIAL, PRODUCT, attribute, numeric


def _batch(api, team) -> str:
    body = {"material": PRODUCT, "line": "L1", "quantity": "1000", "unit": "pcs"}
    return api.ok(api.post(team.production, "/batches", body), 201)["number"]


def test_in_process_and_final_inspections_of_a_batch(master_data, team, db_snapshot,
                                                     chain_intact):
    api = master_data
    tablet = [numeric("WEIGHT", lsl="245.0", usl="255.0", target="250.0", decimals=1,
                      unit="mg"), attribute("VIS")]
    api.effective_plan(material=PRODUCT, stage="in_process", operation="OP-20 compression",
                       sample_size=3, aql=None, inspection_level=None, characteristics=tablet)
    final = api.effective_plan(material=PRODUCT, stage="final", characteristics=tablet,
                               inspection_level="I", aql="0.65")
    batch = _batch(api, team)

    before = db_snapshot()
    for body, field, status in (
            ({"stage": "in_process", "batch_number": batch}, None, 409),  # no operation
            ({"stage": "in_process", "batch_number": "B-NONE", "operation": "OP-20 compression"},
             "batch_number", 422),
            ({"stage": "incoming", "batch_number": batch}, None, 409),
            ({"plan": final["number"], "lot_number": batch, "batch_number": batch},
             "batch_number", 422),
            ({"plan": final["number"], "batch_number": batch, "stage": "in_process"},
             "stage", 422),
            ({"stage": "final", "batch_number": batch, "material": MATERIAL}, "material", 422),
            ({"batch_number": batch}, "stage", 422)):
        response = api.post(team.production, "/inspections", body)
        assert response.status_code == status, (body, response.get_json())
        if field:
            assert field in response.get_json()["errors"], response.get_json()
    assert db_snapshot() == before

    opened = api.ok(api.post(team.production, "/inspections", {
        "stage": "in_process", "batch_number": batch, "operation": "OP-20 compression"}), 201)
    number = opened["number"]
    assert (opened["batch"], opened["lot"], opened["operation"], opened["sample_size"],
            opened["code_letter"]) == (batch, None, "OP-20 compression", 3, None)
    again = api.post(team.inspector, "/inspections", {
        "stage": "in_process", "batch_number": batch, "operation": "OP-20 compression"})
    assert again.status_code == 409
    entries = [{"characteristic": "WEIGHT", "value": v} for v in ("249.8", "250.3", "256.1")]
    entries += [{"characteristic": "VIS", "passed": p} for p in (True, True, False)]
    recorded = api.ok(api.results(team.inspector, number, entries), 201)
    assert [r["conforming"] for r in recorded["results"]] == [True, True, False,
                                                              True, True, False]
    assert recorded["summary"]["nonconforming_units"] == 1
    api.complete(number)
    api.ok(api.transition(team.approver, f"/inspections/{number}", "accept",
                          meaning="approved", reason="sample 3 adjusted at the press"))
    assert api.ok(api.get(team.auditor, f"/batches/{batch}"))["status"] == "quarantine"

    # final: 1000 pieces, level I -> G; AQL 0.65 at G -> up to F, n = 20, Ac 0
    final_lot = api.ok(api.post(team.inspector, "/inspections",
                                {"plan": final["number"], "batch_number": batch}), 201)
    assert (final_lot["stage"], final_lot["code_letter"], final_lot["sample_size"],
            final_lot["accept_number"]) == ("final", "G", 20, 0)
    listed = api.ok(api.get(team.auditor, "/inspections", batch=batch))
    assert [i["number"] for i in listed] == [final_lot["number"], number]
    assert chain_intact()


def test_a_new_revision_needs_an_approved_change_control(master_data, team, db_snapshot,
                                                         audit_seq, audit_since,
                                                         chain_intact):
    api = master_data
    old = api.effective_plan()["number"]
    old_path = f"/inspection-plans/{old}"
    bad = api.post(team.reviewer, f"{old_path}/revisions", {"characteristics": [
        numeric(usl="9.00", target=None)]})
    assert bad.status_code == 422 and "characteristics.0.lsl" in bad.get_json()["errors"]
    draft = api.ok(api.post(team.reviewer, f"{old_path}/revisions", {"title": "Parts, rev 2"}),
                   201)
    new = draft["number"]
    assert (draft["state"], draft["revision"], draft["supersedes"], draft["title"]) == \
        ("draft", 2, old, "Parts, rev 2")
    assert draft["characteristics"] == [numeric(), attribute()]
    assert api.post(team.reviewer, f"{old_path}/revisions").status_code == 409
    assert api.post(team.reviewer, f"/inspection-plans/{new}/revisions").status_code == 409
    new_path = f"/inspection-plans/{new}"
    api.ok(api.patch(team.reviewer, new_path, {"characteristics": [
        numeric(usl="10.05"), attribute()]}, reason="tighter USL after customer complaint"))
    api.ok(api.transition(team.reviewer, new_path, "submit"))

    before = db_snapshot()
    refused = api.transition(team.approver, new_path, "approve", meaning="approved")
    assert refused.status_code == 409, refused.get_json()
    assert f"approved change control naming {old}" in refused.get_json()["detail"]
    assert db_snapshot() == before

    change = api.ok(api.post(team.reviewer, "/change-controls", {
        "title": "Tighter USL for DIA", "change_type": "specification", "risk": "low",
        "justification": "customer complaint", "description": "USL of DIA 10.10 -> 10.05",
        "implementation_plan": "approve revision 2 of the plan",
        "impacted_items": [{"kind": "inspection_plan", "number": old}]}), 201)["number"]
    api.ok(api.transition(team.reviewer, f"/change-controls/{change}", "submit"))
    approved_change = api.ok(api.transition(team.approver2, f"/change-controls/{change}",
                                            "approve", meaning="approved"))
    assert approved_change["state"] == "approved"

    start = audit_seq()
    effective = api.ok(api.transition(team.approver, new_path, "approve", meaning="approved"))
    assert effective["state"] == "effective"
    superseded = api.ok(api.get(team.auditor, old_path))
    assert superseded["state"] == "superseded"
    events = [(a, entity) for a, _, entity, _ in audit_since(start)]
    assert ("inspection_plan.record.superseded", old) in events
    # new lots are inspected by revision 2
    lot = api.receive("60")["number"]
    inspection = api.inspection_of_lot(lot)
    assert (inspection["plan"], inspection["plan_revision"]) == (new, 2)
    assert inspection["characteristics"][0]["usl"] == "10.05"
    assert chain_intact()


def _approved_change_naming(api, team, plan: str) -> str:
    change = api.ok(api.post(team.reviewer, "/change-controls", {
        "title": f"Revise {plan}", "change_type": "specification", "risk": "low",
        "justification": "compression moved", "description": f"new revision of {plan}",
        "implementation_plan": "approve the revision",
        "impacted_items": [{"kind": "inspection_plan", "number": plan}]}), 201)["number"]
    api.ok(api.transition(team.reviewer, f"/change-controls/{change}", "submit"))
    api.ok(api.transition(team.approver2, f"/change-controls/{change}", "approve",
                          meaning="approved"))
    return change


def test_a_revision_moved_to_another_operation_still_needs_change_control(
        master_data, team, db_snapshot, chain_intact):
    api = master_data
    plan = {"material": PRODUCT, "stage": "in_process", "sample_size": 2, "aql": None,
            "inspection_level": None, "characteristics": [attribute("VIS")]}
    old = api.effective_plan(operation="OP-10 granulation", **plan)["number"]
    other = api.effective_plan(operation="OP-20 compression", **plan)["number"]
    new = api.ok(api.post(team.reviewer, f"/inspection-plans/{old}/revisions",
                          {"operation": "OP-20 compression"}), 201)["number"]
    new_path = f"/inspection-plans/{new}"
    api.ok(api.transition(team.reviewer, new_path, "submit"))

    def refused(words: str) -> None:
        before = db_snapshot()
        response = api.transition(team.approver, new_path, "approve", meaning="approved")
        assert response.status_code == 409, response.get_json()
        assert words in response.get_json()["detail"], response.get_json()
        assert db_snapshot() == before

    refused(f"approved change control naming {old}")
    _approved_change_naming(api, team, old)
    # one effective plan per material, stage and operation still holds for the new key
    refused(f"{other} is the effective in_process plan")
    api.ok(api.transition(team.approver, f"/inspection-plans/{other}", "retire",
                          meaning="approved", reason="replaced by the moved plan"))
    effective = api.ok(api.transition(team.approver, new_path, "approve", meaning="approved"))
    assert (effective["state"], effective["operation"]) == ("effective", "OP-20 compression")
    assert api.ok(api.get(team.auditor, f"/inspection-plans/{old}"))["state"] == "superseded"
    assert chain_intact()
