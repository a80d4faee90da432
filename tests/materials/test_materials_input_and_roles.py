"""Bad input is refused with 422 naming the field, roles without the permission with 403,
and neither writes anything; supplier approval is signed by someone other than its author."""
from __future__ import annotations

import pytest

LOT = {"material": "RM-API", "supplier": "SUP-ACME", "quantity": "10", "unit": "kg"}
BATCH = {"material": "FG-TAB", "line": "L1", "quantity": "10", "unit": "pcs", "inputs": []}
MATERIAL = {"code": "RM-NEW", "name": "New", "kind": "raw", "unit": "kg"}


@pytest.mark.parametrize("path, body, field", [
    ("/lots", {k: v for k, v in LOT.items() if k != "quantity"}, "quantity"),
    ("/lots", {**LOT, "quantity": 10}, "quantity"),
    ("/lots", {**LOT, "quantity": 10.5}, "quantity"),
    ("/lots", {**LOT, "quantity": "-1"}, "quantity"),
    ("/lots", {**LOT, "quantity": "0"}, "quantity"),
    ("/lots", {**LOT, "quantity": "ten"}, "quantity"),
    ("/lots", {**LOT, "quantity": "1e3"}, "quantity"),
    ("/lots", {**LOT, "unit": "tons"}, "unit"),
    ("/lots", {**LOT, "material": "rm-api"}, "material"),
    ("/lots", {**LOT, "material": "RM-NOPE"}, "material"),
    ("/lots", {**LOT, "supplier": ["SUP-ACME"]}, "supplier"),
    ("/lots", {**LOT, "supplier_lot": "x" * 81}, "supplier_lot"),
    ("/lots", {**LOT, "received_on": "2026-02-30"}, "received_on"),
    ("/lots", {**LOT, "expires_on": 20300101}, "expires_on"),
    ("/lots", {**LOT, "colour": "red"}, "colour"),
    ("/batches", {k: v for k, v in BATCH.items() if k != "line"}, "line"),
    ("/batches", {**BATCH, "line": "L 1"}, "line"),
    ("/batches", {**BATCH, "line": "L" * 21}, "line"),
    ("/batches", {**BATCH, "inputs": [{"lot_number": "X"}]}, "inputs.0.quantity"),
    ("/batches", {**BATCH, "inputs": [{"lot_number": "X", "quantity": 1}]},
     "inputs.0.quantity"),
    ("/batches", {**BATCH, "inputs": [{"lot_number": "X", "quantity": "-1"}]},
     "inputs.0.quantity"),
    ("/batches", {**BATCH, "inputs": [{"quantity": "1"}]}, "inputs.0.lot_number"),
    ("/batches", {**BATCH, "inputs": [{"lot_number": "X" * 41, "quantity": "1"}]},
     "inputs.0.lot_number"),
    ("/batches", {**BATCH, "inputs": "RM-1"}, "inputs"),
    ("/materials", {**MATERIAL, "code": "rm new"}, "code"),
    ("/materials", {**MATERIAL, "code": "X" * 41}, "code"),
    ("/materials", {**MATERIAL, "kind": "gas"}, "kind"),
    ("/materials", {**MATERIAL, "unit": "lb"}, "unit"),
    ("/materials", {**MATERIAL, "shelf_life_days": 0}, "shelf_life_days"),
    ("/materials", {**MATERIAL, "shelf_life_days": "30"}, "shelf_life_days"),
    ("/materials", {**MATERIAL, "name": "n" * 201}, "name"),
    ("/materials", {k: v for k, v in MATERIAL.items() if k != "name"}, "name"),
    ("/suppliers", {"code": "SUP/1", "name": "Slash"}, "code"),
    ("/suppliers", {"code": "SUP-2"}, "name"),
])
def test_bad_input_is_named_and_writes_nothing(basics, team, db_snapshot, path, body, field):
    user = team.reviewer if path in ("/materials", "/suppliers") else team.production
    before = db_snapshot()
    response = basics.post(user, path, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert db_snapshot() == before


def test_an_unknown_lot_and_bad_trace_direction(basics, team, db_snapshot):
    m = basics
    assert m.get(team.auditor, "/lots/NOPE-1").status_code == 404
    assert m.get(team.auditor, "/lots/NOPE-1/trace", direction="backward").status_code == 404
    number = m.received()
    for query in ({"direction": "sideways"}, {}):
        response = m.get(team.auditor, f"/lots/{number}/trace", **query)
        assert response.status_code == 422 and "direction" in response.get_json()["errors"]
    before = db_snapshot()
    assert m.patch(team.reviewer, "/materials/RM-API", {"unit": "g"}).status_code == 422
    assert m.patch(team.reviewer, "/materials/RM-API", {"name": "Renamed"},
                   reason=None).status_code == 422
    assert db_snapshot() == before


@pytest.mark.parametrize("role_user, path, body", [
    ("inspector", "/lots", LOT),
    ("auditor", "/lots", LOT),
    ("production", "/materials", MATERIAL),
    ("production", "/suppliers", {"code": "SUP-X", "name": "X"}),
    ("reviewer", "/batches", BATCH),
    ("approver", "/batches", BATCH),
])
def test_roles_without_the_permission_are_refused(basics, team, db_snapshot, role_user, path,
                                                  body):
    before = db_snapshot()
    response = basics.post(getattr(team, role_user), path, body)
    assert response.status_code == 403, response.get_json()
    assert db_snapshot() == before


def test_transitions_need_their_permissions(basics, team, db_snapshot):
    m = basics
    number = m.received(release=False)
    m.supplier("SUP-NEW", approve=False)
    before = db_snapshot()
    refusals = [
        m.transition(team.production, f"/lots/{number}", "release", meaning="released"),
        m.transition(team.reviewer, f"/lots/{number}", "release", meaning="released"),
        m.transition(team.reviewer, "/suppliers/SUP-NEW", "approve", meaning="approved"),
        m.transition(team.production, "/materials/RM-API", "deactivate", reason="x"),
        m.patch(team.inspector, f"/lots/{number}", {"supplier_lot": "X"})]
    assert [r.status_code for r in refusals] == [403] * 5
    assert db_snapshot() == before


def test_supplier_approval_is_signed_by_someone_other_than_its_author(basics, team,
                                                                      db_snapshot, make_user):
    m = basics
    author = make_user("quinn.qa", "qa_approver")  # may create and approve suppliers
    m.ok(m.post(author, "/suppliers", {"code": "SUP-OWN", "name": "Own"}), 201)
    before = db_snapshot()
    own = m.transition(author, "/suppliers/SUP-OWN", "approve", meaning="approved")
    assert own.status_code == 403 and "segregation" in own.get_json()["type"], own.get_json()
    after = db_snapshot()
    # the refused signature is audited (and counts toward lockout), nothing else changes
    assert {k: v for k, v in after.items() if k not in ("audit_events", "audit_head")} == \
        {k: v for k, v in before.items() if k not in ("audit_events", "audit_head")}
    approved = m.ok(m.transition(team.approver, "/suppliers/SUP-OWN", "approve",
                                 meaning="approved"))
    assert approved["state"] == "approved"
    assert [(s["signer"], s["meaning"]) for s in approved["signatures"]] == [
        ("anna.approver", "approved")]
    blocked = m.ok(m.transition(team.approver, "/suppliers/SUP-OWN", "block",
                                reason="quality agreement withdrawn"))
    assert blocked["state"] == "blocked"
    assert m.receive(supplier="SUP-OWN").status_code == 409
