"""Inspection plans over HTTP: validation (422 naming the field, nothing written), drafting,
approval by someone other than the author, one effective plan per material and stage."""
from __future__ import annotations

import pytest

from tests.inspection.conftest import MATERIAL, attribute, numeric


@pytest.mark.parametrize("fields, field", [
    ({"characteristics": [numeric(lsl="10.20", usl="10.10", target=None)]},
     "characteristics.0.lsl"),
    ({"characteristics": [numeric(target="10.50")]}, "characteristics.0.target"),
    ({"characteristics": [numeric(), numeric()]}, "characteristics.1.code"),
    ({"characteristics": [{**numeric(), "lsl": 9.9}]}, "characteristics.0.lsl"),
    ({"characteristics": [{**numeric(), "usl": "ten"}]}, "characteristics.0.usl"),
    ({"characteristics": [numeric(lsl=None, usl=None, target=None)]}, "characteristics.0.lsl"),
    ({"characteristics": [numeric(decimals=1)]}, "characteristics.0.lsl"),
    ({"characteristics": [numeric(decimals=7)]}, "characteristics.0.decimals"),
    ({"characteristics": [{**attribute(), "usl": "1"}]}, "characteristics.0.usl"),
    ({"characteristics": [{**numeric(), "type": "color"}]}, "characteristics.0.type"),
    ({"characteristics": []}, "characteristics"),
    ({"material": "NO-SUCH"}, "material"),
    ({"stage": "in_process"}, "operation"),
    ({"operation": "OP-10"}, "operation"),
    ({"sample_size": 5}, "sample_size"),
    ({"aql": "1.2"}, "aql"),
    ({"aql": 1.0}, "aql"),
    ({"inspection_level": "IV"}, "inspection_level"),
    ({"aql": None, "inspection_level": None}, "sample_size"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_plans_are_refused_naming_the_field(master_data, team, db_snapshot, fields,
                                                    field):
    before = db_snapshot()
    response = master_data.draft_plan(**fields)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert db_snapshot() == before


def test_a_plan_is_drafted_edited_and_approved_by_another(master_data, team, audit_seq,
                                                          audit_since, chain_intact):
    start = audit_seq()
    created = master_data.ok(master_data.draft_plan(aql="1"), 201)
    number = created["number"]
    assert number.startswith("IP-") and created["state"] == "draft"
    assert (created["material"], created["revision"], created["supersedes"],
            created["aql"], created["inspection_level"]) == (MATERIAL, 1, None, "1.0", "II")
    assert created["characteristics"][0] == numeric()
    assert created["characteristics"][1] == attribute()

    path = f"/inspection-plans/{number}"
    refused = master_data.patch(team.reviewer, path, {"characteristics": [
        numeric(lsl="10.30", usl="10.10", target=None)]})
    assert refused.status_code == 422
    assert "characteristics.0.lsl" in refused.get_json()["errors"]
    edited = master_data.ok(master_data.patch(team.reviewer, path, {
        "characteristics": [numeric(usl="10.20"), attribute()]}, reason="wider tolerance"))
    assert edited["version"] == 2 and edited["characteristics"][0]["usl"] == "10.20"

    master_data.ok(master_data.transition(team.reviewer, path, "submit"))
    assert master_data.patch(team.reviewer, path, {"title": "Late"}).status_code == 409
    not_permitted = master_data.transition(team.reviewer, path, "approve", meaning="approved")
    assert not_permitted.status_code == 403
    approved = master_data.ok(master_data.transition(team.approver, path, "approve",
                                                     meaning="approved"))
    assert approved["state"] == "effective"
    assert approved["signatures"][0]["meaning"] == "approved"
    listed = master_data.ok(master_data.get(team.auditor, "/inspection-plans",
                                            material=MATERIAL, state="effective"))
    assert [p["number"] for p in listed] == [number]
    actions = [a for a, _, entity, _ in audit_since(start) if entity == number]
    assert actions == ["inspection_plan.record.created", "inspection_plan.record.updated",
                       "inspection_plan.record.transitioned", "signature.applied",
                       "inspection_plan.record.transitioned"]
    assert chain_intact()


def test_the_author_cannot_approve_own_plan(master_data, team, record_counts, audit_seq,
                                            audit_since):
    number = master_data.ok(master_data.draft_plan(team.approver), 201)["number"]
    path = f"/inspection-plans/{number}"
    master_data.ok(master_data.transition(team.approver, path, "submit"))
    counts, start = record_counts(), audit_seq()
    refused = master_data.transition(team.approver, path, "approve", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert [a for a, *_ in audit_since(start)] == ["signature.refused"]
    assert record_counts() == counts


def test_one_effective_plan_per_material_and_stage(master_data, team, db_snapshot):
    master_data.effective_plan()
    second = master_data.ok(master_data.draft_plan(sample_size=3, aql=None,
                                                   inspection_level=None), 201)["number"]
    path = f"/inspection-plans/{second}"
    master_data.ok(master_data.transition(team.reviewer, path, "submit"))
    before = db_snapshot()
    refused = master_data.transition(team.approver, path, "approve", meaning="approved")
    assert refused.status_code == 409
    assert "make a revision of it" in refused.get_json()["detail"]
    assert db_snapshot() == before
    # another operation of an in-process plan is another key
    in_process = master_data.effective_plan(stage="in_process", operation="OP-10")
    assert in_process["state"] == "effective" and in_process["operation"] == "OP-10"


def test_retire_needs_a_reason(master_data, team):
    number = master_data.effective_plan()["number"]
    path = f"/inspection-plans/{number}"
    refused = master_data.transition(team.approver, path, "retire", meaning="approved")
    assert refused.status_code == 422 and "reason" in refused.get_json()["errors"]
    retired = master_data.ok(master_data.transition(team.approver, path, "retire",
                                                    meaning="approved", reason="obsolete part"))
    assert retired["state"] == "retired"
