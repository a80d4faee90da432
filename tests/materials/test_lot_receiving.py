"""Receiving lots: who from, which material, which unit, which expiry; every refusal
changes nothing."""
from __future__ import annotations

from datetime import date, timedelta

import pytest


def test_expiry_defaults_to_receipt_plus_shelf_life(basics):
    m = basics
    received_on = date.today() - timedelta(days=10)
    lot = m.ok(m.receive(received_on=received_on.isoformat(), supplier_lot="ACME-1"), 201)
    assert (lot["status"], lot["received_on"], lot["expires_on"], lot["supplier_lot"]) == (
        "quarantine", received_on.isoformat(), (received_on + timedelta(days=365)).isoformat(),
        "ACME-1")
    assert lot["number"].startswith(f"RM-API-{received_on:%y%m%d}-")  # numbered by receipt day
    given = (date.today() + timedelta(days=30)).isoformat()
    assert m.ok(m.receive(expires_on=given), 201)["expires_on"] == given


def test_conditionally_approved_suppliers_deliver(basics, team):
    m = basics
    m.supplier("SUP-COND", approve=False)
    m.ok(m.transition(team.approver, "/suppliers/SUP-COND", "approve_conditionally",
                      meaning="approved", reason="audit pending, first deliveries tested"))
    assert m.ok(m.receive(supplier="SUP-COND"), 201)["supplier"] == "SUP-COND"


@pytest.mark.parametrize("setup, body, status, field", [
    ("pending", {"supplier": "SUP-NEW"}, 409, None),
    ("blocked", {"supplier": "SUP-NEW"}, 409, None),
    ("inactive", {}, 409, None),
    (None, {"material": "FG-TAB", "unit": "pcs"}, 422, "material"),
    (None, {"unit": "g"}, 422, "unit"),
    (None, {"material": "RM-NONE"}, 422, "material"),
    (None, {"supplier": "SUP-NONE"}, 422, "supplier"),
    ("no_shelf_life", {"material": "RM-NOSL"}, 422, "expires_on"),
    # days=3, not 1: the parameters are computed at collection, and a run may cross midnight
    (None, {"received_on": (date.today() + timedelta(days=3)).isoformat()}, 422, "received_on"),
    (None, {"received_on": "2020-01-10", "expires_on": "2020-01-09"}, 422, "expires_on"),
    (None, {"received_on": "2020-01-10", "expires_on": "2020-06-01"}, 422, "expires_on"),
])
def test_refused_receipts_change_nothing(basics, team, db_snapshot, setup, body, status, field):
    m = basics
    if setup in ("pending", "blocked"):
        m.supplier("SUP-NEW", approve=False)
        if setup == "blocked":
            m.ok(m.transition(team.approver, "/suppliers/SUP-NEW", "block",
                              reason="failed audit"))
    elif setup == "inactive":
        m.ok(m.transition(team.reviewer, "/materials/RM-API", "deactivate", reason="obsolete"))
    elif setup == "no_shelf_life":
        m.material("RM-NOSL", shelf_life_days=None)
    before = db_snapshot()
    response = m.receive(**body)
    assert response.status_code == status, response.get_json()
    problem = response.get_json()
    if field:
        assert field in problem["errors"], problem
    else:
        assert setup.replace("_", " ") in problem["detail"] or setup in problem["detail"]
    assert db_snapshot() == before


def test_a_quarantined_lot_is_corrected_with_a_reason(basics, team):
    m = basics
    number = m.received(release=False)
    new_expiry = (date.today() + timedelta(days=100)).isoformat()
    changed = m.ok(m.patch(team.production, f"/lots/{number}", {"expires_on": new_expiry},
                           reason="certificate of analysis gives an earlier expiry"))
    assert (changed["expires_on"], changed["version"]) == (new_expiry, 2)
    m.release(number)
    refused = m.patch(team.production, f"/lots/{number}", {"supplier_lot": "X"})
    assert refused.status_code == 409  # released lots are no longer edited


def test_lists_filter_by_status_material_and_supplier(basics, team):
    m = basics
    m.material("RM-EXC")
    m.supplier("SUP-OTHER")
    released = m.received("RM-API")
    quarantined = m.received("RM-EXC", "SUP-OTHER", release=False)

    def numbers(**query):
        return [lot["number"] for lot in m.ok(m.get(team.auditor, "/lots", **query))]
    assert numbers() == [quarantined, released]
    assert numbers(status="released") == [released]
    assert numbers(material="RM-EXC") == [quarantined]
    assert numbers(supplier="SUP-ACME") == [released]
    assert numbers(limit=1, offset=1) == [released]
    assert m.get(team.auditor, "/lots", status="gone").status_code == 422
    codes = [s["code"] for s in m.ok(m.get(team.auditor, "/suppliers", state="approved"))]
    assert codes == ["SUP-ACME", "SUP-OTHER"]
    kinds = [(x["code"], x["kind"]) for x in m.ok(m.get(team.auditor, "/materials",
                                                        kind="finished"))]
    assert kinds == [("FG-TAB", "finished")]
