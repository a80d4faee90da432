"""Deviations end to end over HTTP: the lots they name go on hold and come back, the
investigation, the CAPA a closure needs, closure by QA signature, and the audit chain."""
from __future__ import annotations

import re

from tests.deviations.support import audit_events, audit_head, chain_verified

NUMBER = re.compile(r"^DEV-\d{4}-\d{5}$")
DEVIATION = {"title": "Granulator over temperature", "kind": "unplanned",
             "severity": "minor", "occurred_on": "2026-01-15",
             "description": "The granulator ran at 65 C for 12 minutes (limit 60 C)."}
INVESTIGATION = {"investigation": "Sensor log and operator interviews.",
                 "root_cause": "Thermostat drift.", "impact_assessment": "No impact on "
                 "product quality: assay within limits.", "capa_required": True}


def raise_deviation(api, user, **fields) -> dict:
    return api.ok(api.post(user, "deviations", {**DEVIATION, **fields}), 201)


def lot_status(api, user, number: str) -> str:
    return api.ok(api.get(user, f"lots/{number}"))["status"]


def test_deviation_holds_lots_until_closed_with_its_capa(app, api, team, stock, db_snapshot):
    start = audit_head(app)
    dev = raise_deviation(api, team.production, lots=[stock.lot], batches=[stock.batch])
    number = dev["number"]
    assert NUMBER.match(number) and (dev["state"], dev["version"]) == ("open", 2)
    assert (dev["lots"], dev["batches"]) == ([stock.lot], [stock.batch])
    assert {lot["number"]: lot["status"] for lot in dev["affected_lots"]} == {
        stock.lot: "on_hold", stock.batch: "on_hold"}
    assert dev["capa_required"] is None and dev["capas"] == []
    assert lot_status(api, team.auditor, stock.lot) == "on_hold"
    # a second open deviation naming the same lot keeps it on hold after the first closes
    second = raise_deviation(api, team.inspector, title="Label mix-up", lots=[stock.lot])

    api.ok(api.patch(team.production, f"deviations/{number}", {"severity": "major"},
                     reason="twelve minutes is longer than first reported"))
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    before = db_snapshot()
    early = api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure")
    assert early.status_code == 409
    assert early.get_json()["missing"] == ["root_cause", "impact_assessment", "capa_required"]
    assert db_snapshot() == before
    investigated = api.ok(api.patch(team.reviewer, f"deviations/{number}", INVESTIGATION,
                                    reason="investigation complete"))
    assert investigated["capa_required"] is True
    api.ok(api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure"))

    before = db_snapshot()
    refused = api.transition(team.approver, f"deviations/{number}", "close",
                             meaning="approved")
    assert refused.status_code == 409 and "requires a CAPA" in refused.get_json()["detail"]
    assert db_snapshot() == before  # refused before the signature: nothing at all written
    capa = api.ok(api.post(team.reviewer, "capas", {
        "source": "deviation", "source_reference": number, "title": "Thermostat calibration",
        "problem_statement": "Thermostat drift goes unnoticed.",
        "owner": team.production.username}), 201)
    assert api.ok(api.get(team.auditor, f"deviations/{number}"))["capas"] == [
        {"number": capa["number"], "state": "open"}]

    closed = api.ok(api.transition(team.approver, f"deviations/{number}", "close",
                                   meaning="approved"))
    assert closed["state"] == "closed" and closed["transitions"] == []
    assert closed["signatures"][0]["meaning"] == "approved"
    assert lot_status(api, team.auditor, stock.batch) == stock.batch_status
    assert lot_status(api, team.auditor, stock.lot) == "on_hold"  # the second still names it
    api.ok(api.transition(team.approver, f"deviations/{second['number']}", "cancel",
                          reason="raised in error: the labels were correct",
                          meaning="approved"))
    assert lot_status(api, team.auditor, stock.lot) == "released"

    history = api.ok(api.get(team.auditor, f"deviations/{number}/history"))
    assert [v["action"] for v in history["versions"]] == [
        "create", "name_lots", "update", "submit_for_investigation", "update",
        "submit_for_closure", "close"]
    assert history["versions"][1]["changes"]["batches"] == {"before": [],
                                                            "after": [stock.batch]}
    assert all(s["verified"] for s in history["signatures"])
    actions = [action for action, _, entity in audit_events(app, start)
               if entity in (number, stock.lot, stock.batch)]
    assert actions[:4] == ["deviation.record.created", "deviation.lots.named",
                           "lot.hold.placed", "lot.hold.placed"]
    assert actions.count("lot.hold.lifted") == 2
    chain_verified(api, team.auditor)


def test_naming_more_lots_puts_them_on_hold(api, team, stock):
    number = raise_deviation(api, team.production, lots=[stock.lot])["number"]
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    named = api.ok(api.post(team.reviewer, f"deviations/{number}/lots",
                            {"lots": [stock.lot, stock.other_lot],
                             "reason": "the same drum was split across two lots"}))
    assert named["lots"] == sorted([stock.lot, stock.other_lot])
    assert lot_status(api, team.auditor, stock.other_lot) == "on_hold"
    again = api.post(team.reviewer, f"deviations/{number}/lots",
                     {"lots": [stock.lot], "reason": "again"})
    assert again.status_code == 422 and "lots" in again.get_json()["errors"]
    api.ok(api.transition(team.approver, f"deviations/{number}", "cancel",
                          reason="duplicate of another deviation", meaning="approved"))
    assert lot_status(api, team.auditor, stock.other_lot) == "released"
    late = api.post(team.reviewer, f"deviations/{number}/lots",
                    {"lots": [stock.other_lot], "reason": "late"})
    assert late.status_code == 409


def test_closure_without_capa_when_none_is_required(api, team, stock):
    number = raise_deviation(api, team.production)["number"]
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    api.ok(api.patch(team.reviewer, f"deviations/{number}",
                     {**INVESTIGATION, "capa_required": False}, reason="investigated"))
    api.ok(api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure"))
    returned = api.ok(api.transition(team.approver, f"deviations/{number}", "return",
                                     reason="impact assessment too thin"))
    assert returned["state"] == "in_investigation"
    api.ok(api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure"))
    closed = api.ok(api.transition(team.approver, f"deviations/{number}", "close",
                                   meaning="approved"))
    assert closed["state"] == "closed"


def test_list_filters(api, team, stock):
    raise_deviation(api, team.production, lots=[stock.lot])
    critical = raise_deviation(api, team.production, severity="critical", kind="planned")
    listed = api.ok(api.get(team.auditor, "deviations?severity=critical"))
    assert [d["number"] for d in listed] == [critical["number"]]
    by_lot = api.ok(api.get(team.auditor, f"deviations?lot={stock.lot}"))
    assert len(by_lot) == 1 and by_lot[0]["lots"] == [stock.lot]
    assert len(api.ok(api.get(team.auditor, "deviations?state=open&limit=1"))) == 1
    assert api.get(team.auditor, "deviations?severity=huge").status_code == 422


def test_a_cancelled_capa_does_not_satisfy_closure(api, team, db_snapshot):
    number = raise_deviation(api, team.production)["number"]
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    api.ok(api.patch(team.reviewer, f"deviations/{number}", INVESTIGATION, reason="done"))
    capa = api.ok(api.post(team.reviewer, "capas", {
        "source": "deviation", "source_reference": number, "title": "Recalibrate",
        "problem_statement": "Drift.", "owner": team.production.username}), 201)
    api.ok(api.transition(team.approver, f"capas/{capa['number']}", "cancel",
                          reason="wrong deviation"))
    api.ok(api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure"))
    before = db_snapshot()
    refused = api.transition(team.approver, f"deviations/{number}", "close", meaning="approved")
    assert refused.status_code == 409 and refused.get_json()["missing"] == ["capa"]
    assert db_snapshot() == before
