"""Requests on CAPA that must be refused and change nothing: the owner, an action owner or
an author closing it (403), bad input (422 naming the field), steps out of order (409)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.deviations.support import audit_events, audit_head

SOON = (date.today() + timedelta(days=30)).isoformat()
CAPA = {"source": "complaint", "source_reference": "Complaint 2026-114",
        "title": "Leaking caps", "problem_statement": "Caps leak after transport."}


def in_effectiveness_check(api, manager, owner, action_owner) -> str:
    number = api.ok(api.post(manager, "capas", {**CAPA, "owner": owner.username,
                                                "effectiveness_due_on": SOON}), 201)["number"]
    api.ok(api.post(manager, f"capas/{number}/actions", {
        "description": "New torque setting.", "owner": action_owner.username, "due_on": SOON,
        "reason": "planned"}), 201)
    api.ok(api.transition(manager, f"capas/{number}", "start_implementation"))
    api.ok(api.post(action_owner, f"capas/{number}/actions/1/complete",
                    {"evidence": "Torque set to 2.4 Nm."}))
    api.ok(api.transition(manager, f"capas/{number}", "submit_effectiveness_check"))
    return number


def ready_to_close(api, manager, owner, action_owner, verifier) -> str:
    number = in_effectiveness_check(api, manager, owner, action_owner)
    api.ok(api.transition(verifier, f"capas/{number}", "verify_effective",
                          reason="no leak in 3 shipments", meaning="verified"))
    return number


def assert_refused_by_segregation(app, api, db_snapshot, signer, number: str, action: str,
                                  **signature) -> None:
    """The signer is refused (403) with only the refusal audited and nothing else changed."""
    api.headers(signer)
    before, start = db_snapshot(), audit_head(app)
    refused = api.transition(signer, f"capas/{number}", action, **signature)
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert [a for a, _, _ in audit_events(app, start)] == ["signature.refused"]
    unchanged = ("audit_events", "audit_head")
    assert {k: v for k, v in db_snapshot().items() if k not in unchanged} == \
        {k: v for k, v in before.items() if k not in unchanged}


@pytest.mark.parametrize("who", ["owner", "action_owner", "author"])
def test_owner_action_owner_or_author_cannot_close(app, api, team, make_user, db_snapshot,
                                                   who):
    closer = make_user("carl.closer", "qa_approver")
    roles = {"owner": team.production, "action_owner": team.inspector,
             "author": team.reviewer}
    roles[who] = closer
    manager = closer if who == "author" else team.reviewer
    number = ready_to_close(api, manager, roles["owner"], roles["action_owner"],
                            team.second_approver)
    assert_refused_by_segregation(app, api, db_snapshot, closer, number, "close",
                                  meaning="approved")
    assert api.transition(team.approver, f"capas/{number}", "close",
                          meaning="approved").status_code == 200


@pytest.mark.parametrize("who", ["owner", "action_owner", "author"])
def test_owner_action_owner_or_author_cannot_verify_effectiveness(app, api, team, make_user,
                                                                  db_snapshot, who):
    verifier = make_user("vera.verifier", "qa_approver")
    roles = {"owner": team.production, "action_owner": team.inspector,
             "author": team.reviewer}
    roles[who] = verifier
    manager = verifier if who == "author" else team.reviewer
    number = in_effectiveness_check(api, manager, roles["owner"], roles["action_owner"])
    assert_refused_by_segregation(app, api, db_snapshot, verifier, number, "verify_effective",
                                  reason="no leak in 3 shipments", meaning="verified")
    assert api.transition(team.second_approver, f"capas/{number}", "verify_effective",
                          reason="no leak in 3 shipments", meaning="verified"
                          ).status_code == 200


@pytest.mark.parametrize("who", ["earlier_owner", "completer"])
def test_an_earlier_owner_or_an_action_completer_cannot_close(app, api, team, make_user,
                                                              db_snapshot, who):
    closer = make_user("carl.closer", "qa_approver")
    manager = team.reviewer
    first_owner = closer if who == "earlier_owner" else team.production
    number = api.ok(api.post(manager, "capas", {**CAPA, "owner": first_owner.username,
                                                "effectiveness_due_on": SOON}), 201)["number"]
    # the CAPA is handed over: the earlier owner is no longer named as its owner
    api.ok(api.patch(manager, f"capas/{number}", {"owner": team.inspector.username},
                     reason="handover"))
    api.ok(api.post(manager, f"capas/{number}/actions", {
        "description": "New torque setting.", "owner": team.inspector.username,
        "due_on": SOON, "reason": "planned"}), 201)
    api.ok(api.transition(manager, f"capas/{number}", "start_implementation"))
    # a CAPA manager may complete an action for its owner, and then did the work
    completer = closer if who == "completer" else team.inspector
    api.ok(api.post(completer, f"capas/{number}/actions/1/complete",
                    {"evidence": "Torque set to 2.4 Nm."}))
    api.ok(api.transition(manager, f"capas/{number}", "submit_effectiveness_check"))
    api.ok(api.transition(team.second_approver, f"capas/{number}", "verify_effective",
                          reason="no leak in 3 shipments", meaning="verified"))
    assert_refused_by_segregation(app, api, db_snapshot, closer, number, "close",
                                  meaning="approved")
    assert api.transition(team.approver, f"capas/{number}", "close",
                          meaning="approved").status_code == 200


def test_steps_out_of_order_change_nothing(api, team, db_snapshot):
    number = api.ok(api.post(team.reviewer, "capas", {**CAPA, "owner": "pia.production"}),
                    201)["number"]
    api.ok(api.post(team.reviewer, f"capas/{number}/actions", {
        "description": "Train the line.", "owner": "pia.production", "due_on": SOON,
        "reason": "planned"}), 201)
    api.headers(team.production), api.headers(team.inspector)
    before = db_snapshot()
    # actions are completed while implementing, by their owner or a CAPA manager
    assert api.post(team.production, f"capas/{number}/actions/1/complete",
                    {"evidence": "done"}).status_code == 409
    assert api.post(team.reviewer, f"capas/{number}/actions/9/complete",
                    {"evidence": "done"}).status_code == 404
    assert api.transition(team.reviewer, f"capas/{number}", "verify_effective",
                          reason="r", meaning="verified").status_code == 409
    assert api.post(team.inspector, f"capas/{number}/actions", {
        "description": "x", "owner": "pia.production", "due_on": SOON,
        "reason": "r"}).status_code == 403
    api.ok(api.transition(team.reviewer, f"capas/{number}", "start_implementation"))
    mid = db_snapshot()
    assert api.post(team.inspector, f"capas/{number}/actions/1/complete",
                    {"evidence": "done"}).status_code == 403
    no_due = api.transition(team.reviewer, f"capas/{number}", "submit_effectiveness_check")
    assert no_due.status_code == 409
    assert db_snapshot() == mid and mid != before


SOURCE_CASES = [
    ({"source": "rumour"}, "source"),
    ({"source": None}, "source"),
    ({"source_reference": ""}, "source_reference"),
    ({"source_reference": "x" * 81}, "source_reference"),
    ({"source": "deviation", "source_reference": "DEV-2026-99999"}, "source_reference"),
    ({"title": "x" * 201}, "title"),
    ({"problem_statement": None}, "problem_statement"),
    ({"owner": "nobody.here"}, "owner"),
    ({"owner": "otto.auditor"}, "owner"),
    ({"owner": None}, "owner"),
    ({"effectiveness_due_on": "2026-02-30"}, "effectiveness_due_on"),
    ({"actions": []}, "actions"),
]


@pytest.mark.parametrize("change, field", SOURCE_CASES)
def test_bad_capa_input_names_the_field(api, team, db_snapshot, change, field):
    body = {**CAPA, "owner": "pia.production", **change}
    body = {k: v for k, v in body.items() if v is not None}
    api.headers(team.reviewer)
    before = db_snapshot()
    refused = api.post(team.reviewer, "capas", body)
    assert refused.status_code == 422, refused.get_json()
    assert field in refused.get_json()["errors"]
    assert db_snapshot() == before


@pytest.mark.parametrize("change, field", [
    ({"owner": "nobody.here"}, "owner"),
    ({"due_on": (date.today() - timedelta(days=1)).isoformat()}, "due_on"),
    ({"due_on": "soon"}, "due_on"),
    ({"description": ""}, "description"),
    ({"reason": None}, "reason"),
])
def test_bad_action_input_names_the_field(api, team, db_snapshot, change, field):
    number = api.ok(api.post(team.reviewer, "capas", {**CAPA, "owner": "pia.production"}),
                    201)["number"]
    body = {"description": "Train the line.", "owner": "ivan.inspector", "due_on": SOON,
            "reason": "planned", **change}
    body = {k: v for k, v in body.items() if v is not None}
    before = db_snapshot()
    refused = api.post(team.reviewer, f"capas/{number}/actions", body)
    assert refused.status_code == 422, refused.get_json()
    assert field in refused.get_json()["errors"]
    assert db_snapshot() == before


def test_owner_change_is_checked(api, team, db_snapshot):
    number = api.ok(api.post(team.reviewer, "capas", {**CAPA, "owner": "pia.production"}),
                    201)["number"]
    before = db_snapshot()
    refused = api.patch(team.reviewer, f"capas/{number}", {"owner": "otto.auditor"},
                        reason="handover")
    assert refused.status_code == 422 and "changes.owner" in refused.get_json()["errors"]
    fixed = api.patch(team.reviewer, f"capas/{number}", {"source": "audit"}, reason="r")
    assert fixed.status_code == 422 and "changes.source" in fixed.get_json()["errors"]
    assert db_snapshot() == before
    moved = api.ok(api.patch(team.reviewer, f"capas/{number}", {"owner": "ivan.inspector"},
                             reason="handover"))
    assert moved["owner"] == "ivan.inspector"
