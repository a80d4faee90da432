"""Change controls end to end over HTTP for each risk level: approvals by every required
role in any order, implementation, effectiveness verification and closure, with real
signatures and the audit chain verified at the end; and rejection."""
from __future__ import annotations

import re

import pytest

NUMBER = re.compile(r"^CC-\d{4}-\d{5}$")


@pytest.mark.parametrize("risk, approvers, slots", [
    ("low", ["qa1"], {"qa_1": "anna.qa"}),
    ("medium", ["prod", "qa1"], {"qa_1": "anna.qa", "production": "piet.prod"}),
    ("high", ["prod", "qa2", "qa1"],
     {"qa_1": "bert.qa", "qa_2": "anna.qa", "production": "piet.prod"}),
])
def test_change_control_lifecycle(changes, team, master_data, risk, approvers, slots,
                                  audit_seq, audit_since, chain_intact):
    start = audit_seq()
    created = changes.create(team.raiser, risk=risk)
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    number = record["number"]
    assert NUMBER.match(number)
    assert (record["state"], record["version"], record["created_by"]) == \
        ("draft", 1, "rita.raiser")
    assert record["impacted_items"] == [{"kind": "material", "number": "RM-API-001"}]
    assert [s["filled_by"] for s in record["approvals_required"]] == [None] * len(slots)

    record = changes.ok(team.raiser, number, "submit")
    assert (record["state"], record["version"]) == ("in_approval", 2)
    for index, name in enumerate(approvers):
        record = changes.ok(getattr(team, name), number, "approve", meaning="approved")
        if index < len(approvers) - 1:
            assert record["state"] == "in_approval"
            assert record["version"] == 3 + index
    # the last approval signs version 2 + n, then approvals_complete makes 3 + n
    assert (record["state"], record["version"]) == ("approved", 3 + len(approvers))
    assert {a["slot"]: a["username"] for a in record["approvals"]} == slots
    assert {s["slot"]: s["filled_by"] for s in record["approvals_required"]} == slots
    assert all(a["name"] and a["at"].endswith("Z") for a in record["approvals"])
    # every approver signed the same content, and nothing changed it since
    assert len({s["content_hash"] for s in record["signatures"]}) == 1
    assert not record["changed_since_signing"]

    record = changes.post(team.prod, number, "/implementation", {
        "notes": "Specification SPEC-7 rev 4 issued; plan updated.",
        "reason": "implementation done"}).get_json()
    assert record["implementation_notes"].startswith("Specification SPEC-7")
    record = changes.ok(team.prod, number, "implement", meaning="performed")
    assert record["state"] == "implemented"
    verification = changes.post(team.qa2, number, "/verification", {
        "result": "effective", "notes": "Three lots assayed within the new limits.",
        "reason": "effectiveness check done"})
    assert verification.status_code == 200, verification.get_json()
    record = changes.ok(team.qa2, number, "verify", meaning="verified")
    assert record["state"] == "verified"
    record = changes.ok(team.qa1, number, "close", meaning="approved")
    assert (record["state"], record["transitions"]) == ("closed", [])
    assert [s["meaning"] for s in record["signatures"]] == \
        ["approved"] * len(approvers) + ["performed", "verified", "approved"]

    history = changes.client.get(f"/api/v1/change-controls/{number}/history",
                                 headers=changes.headers(team.auditor)).get_json()
    actions = [v["action"] for v in history["versions"]]
    assert actions == ["create", "submit", *["approve"] * len(approvers), "approvals_complete",
                       "implementation_recorded", "implement", "verification_recorded",
                       "verify", "close"]
    assert all(s["verified"] for s in history["signatures"])

    events = [(action, actor) for action, actor, entity in audit_since(start)
              if entity == number]
    recorded = [actor for action, actor in events if action == "change_control.approval.recorded"]
    assert recorded == [getattr(team, name).username for name in approvers]
    assert ("change_control.record.revised", getattr(team, approvers[-1]).username) in events
    assert chain_intact()


def test_rejection_needs_a_reason(changes, team, master_data, db_snapshot, audit_seq,
                                  audit_since, chain_intact):
    number = changes.submitted(team.raiser, risk="medium")
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.headers(team.prod)
    before = db_snapshot()
    for reason in (None, "  "):
        refused = changes.transition(team.prod, number, "reject", meaning="rejected",
                                     reason=reason)
        assert refused.status_code == 422 and "reason" in refused.get_json()["errors"]
    assert db_snapshot() == before

    start = audit_seq()
    rejected = changes.ok(team.prod, number, "reject", meaning="rejected",
                          reason="line 2 is being requalified; raise again in Q3")
    assert (rejected["state"], rejected["transitions"]) == ("rejected", [])
    assert [a for a, _, _ in audit_since(start)] == ["signature.applied",
                                                     "change_control.record.transitioned"]
    assert chain_intact()


def test_not_effective_change_is_reopened_and_implemented_again(changes, team, master_data,
                                                                db_snapshot):
    number = changes.submitted(team.raiser)
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.headers(team.prod)
    before = db_snapshot()
    no_notes = changes.transition(team.prod, number, "implement", meaning="performed")
    assert no_notes.status_code == 409 and no_notes.get_json()["missing"] == \
        ["implementation_notes"]
    assert db_snapshot() == before

    changes.post(team.prod, number, "/implementation", {"notes": "Done.", "reason": "done"})
    changes.ok(team.prod, number, "implement", meaning="performed")
    changes.post(team.qa2, number, "/verification", {"result": "not_effective",
                                                     "notes": "OOS on lot 2",
                                                     "reason": "effectiveness check"})
    before = db_snapshot()
    not_effective = changes.transition(team.qa2, number, "verify", meaning="verified")
    assert not_effective.status_code == 409
    assert db_snapshot() == before

    reopened = changes.ok(team.qa2, number, "reopen", reason="not effective: OOS on lot 2")
    assert reopened["state"] == "approved"
    changes.post(team.qa1, number, "/implementation", {"notes": "Done, with new mixer speed.",
                                                       "reason": "second implementation"})
    changes.ok(team.qa1, number, "implement", meaning="performed")
    changes.post(team.qa1, number, "/verification", {"result": "effective", "notes": "",
                                                     "reason": "own check"})
    # whoever signed an implementation may not verify it
    refused = changes.transition(team.qa1, number, "verify", meaning="verified")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    # the verification is qa1's decision: nobody else signs it as theirs
    before = db_snapshot()
    not_theirs = changes.transition(team.qa2, number, "verify", meaning="verified")
    assert not_theirs.status_code == 409
    assert not_theirs.get_json()["recorded_by"] == team.qa1.username
    assert db_snapshot() == before
    repeated = changes.post(team.qa2, number, "/verification",
                            {"result": "effective", "notes": "", "reason": "re-checked"})
    assert repeated.status_code == 422 and "notes" in repeated.get_json()["errors"]
    assert db_snapshot() == before
    changes.post(team.qa2, number, "/verification", {"result": "effective",
                                                     "notes": "Blend uniformity in limits",
                                                     "reason": "re-checked"})
    assert changes.ok(team.qa2, number, "verify", meaning="verified")["state"] == "verified"
