"""CAPA end to end over HTTP: actions with owners, completion with evidence, the
effectiveness check (not effective reopens), closure by QA signature with segregation of
duties, and the audit chain."""
from __future__ import annotations

import re
from datetime import date, timedelta

from tests.deviations.support import audit_events, audit_head, chain_verified

NUMBER = re.compile(r"^CAPA-\d{4}-\d{5}$")
SOON = (date.today() + timedelta(days=30)).isoformat()
CAPA = {"source": "audit", "source_reference": "AUD-2026-07 finding 3",
        "title": "Balance calibration", "problem_statement": "Balances were used past their "
        "calibration date.", "root_cause": "No reminder before the calibration expires."}


def open_capa(api, user, owner, **fields) -> dict:
    return api.ok(api.post(user, "capas", {**CAPA, "owner": owner.username, **fields}), 201)


def add_action(api, user, number: str, owner, description: str, due_on: str = SOON):
    return api.post(user, f"capas/{number}/actions",
                    {"description": description, "owner": owner.username, "due_on": due_on,
                     "reason": "planned"})


def complete(api, user, number: str, n: int, evidence: str = "Done, see record 42."):
    return api.post(user, f"capas/{number}/actions/{n}/complete", {"evidence": evidence})


def test_capa_lifecycle_with_a_reopened_effectiveness_check(app, api, team):
    start = audit_head(app)
    capa = open_capa(api, team.reviewer, team.production)
    number = capa["number"]
    assert NUMBER.match(number) and (capa["state"], capa["version"]) == ("open", 1)
    early = api.transition(team.reviewer, f"capas/{number}", "start_implementation")
    assert early.status_code == 409
    api.ok(add_action(api, team.reviewer, number, team.production, "Add calibration "
                      "reminders to the ERP."), 201)
    planned = api.ok(add_action(api, team.reviewer, number, team.inspector,
                                "Check every balance label."), 201)
    assert [(a["n"], a["owner"]) for a in planned["actions"]] == [
        (1, "pia.production"), (2, "ivan.inspector")]
    api.ok(api.transition(team.reviewer, f"capas/{number}", "start_implementation"))

    assert complete(api, team.production, number, 2).status_code == 403  # not its owner
    api.ok(complete(api, team.production, number, 1))
    blocked = api.transition(team.reviewer, f"capas/{number}", "submit_effectiveness_check")
    assert blocked.status_code == 409 and blocked.get_json()["open_actions"] == [2]
    done = api.ok(complete(api, team.inspector, number, 2, "All 14 labels checked."))
    assert done["actions"][1]["completed_by"] == "ivan.inspector"
    assert complete(api, team.inspector, number, 2).status_code == 409
    api.ok(api.patch(team.reviewer, f"capas/{number}", {"effectiveness_due_on": SOON},
                     reason="check after one month"))
    api.ok(api.transition(team.reviewer, f"capas/{number}", "submit_effectiveness_check"))

    reopened = api.ok(api.transition(team.reviewer, f"capas/{number}", "record_ineffective",
                                     reason="two balances were found overdue again"))
    assert reopened["state"] == "implementing"
    api.ok(add_action(api, team.reviewer, number, team.production, "Block overdue balances "
                      "in the weighing system."), 201)
    api.ok(complete(api, team.reviewer, number, 3))  # a CAPA manager may complete any action
    api.ok(api.transition(team.reviewer, f"capas/{number}", "submit_effectiveness_check"))
    # the effectiveness check is independent: the reviewer wrote and did some of the work
    assert api.transition(team.reviewer, f"capas/{number}", "verify_effective",
                          reason="looks fine", meaning="verified").status_code == 403
    verified = api.ok(api.transition(team.second_approver, f"capas/{number}", "verify_effective",
                                     reason="no overdue balance in 30 days", meaning="verified"))
    assert verified["state"] == "pending_closure"
    closed = api.ok(api.transition(team.approver, f"capas/{number}", "close",
                                   meaning="approved"))
    assert closed["state"] == "closed"
    assert [s["meaning"] for s in closed["signatures"]] == ["verified", "approved"]

    history = api.ok(api.get(team.auditor, f"capas/{number}/history"))
    assert [v["action"] for v in history["versions"]] == [
        "create", "add_action", "add_action", "start_implementation", "complete_action",
        "complete_action", "update", "submit_effectiveness_check", "record_ineffective",
        "add_action", "complete_action", "submit_effectiveness_check", "verify_effective",
        "close"]
    assert history["versions"][8]["reason"] == "two balances were found overdue again"
    actions = [a for a, _, entity in audit_events(app, start) if entity == number]
    assert actions.count("capa.action.added") == 3
    assert actions.count("capa.action.completed") == 3
    chain_verified(api, team.auditor)


def test_capa_from_a_deviation_names_it(api, team):
    deviation = api.ok(api.post(team.production, "deviations", {
        "title": "Spill", "description": "Spill in room 4.", "kind": "unplanned",
        "severity": "minor", "occurred_on": "2026-01-02"}), 201)
    capa = open_capa(api, team.reviewer, team.production, source="deviation",
                     source_reference=deviation["number"])
    assert capa["source_reference"] == deviation["number"]
    listed = api.ok(api.get(team.auditor, f"capas?source=deviation&source_reference="
                                          f"{deviation['number']}"))
    assert [c["number"] for c in listed] == [capa["number"]]
    assert api.ok(api.get(team.auditor, "capas?source=complaint")) == []


def test_cancel_needs_a_reason(api, team):
    number = open_capa(api, team.reviewer, team.production)["number"]
    assert api.transition(team.approver, f"capas/{number}", "cancel").status_code == 422
    cancelled = api.ok(api.transition(team.approver, f"capas/{number}", "cancel",
                                      reason="merged into another CAPA"))
    assert cancelled["state"] == "cancelled"
    late = add_action(api, team.reviewer, number, team.production, "Too late")
    assert late.status_code == 409
