"""Approvals that must be refused, and what a refusal leaves behind: nothing, except the
audit event of a refused signature (see tests/records/test_signing_api.py)."""
from __future__ import annotations

from tests.identity.test_login_and_lockout import failed_attempts
from tests.records.test_sign_ahead_refusals import slow_work  # noqa: F401  (a fixture)

AUDIT = ("audit_events", "audit_head")


def _without_audit(snapshot: dict) -> dict:
    return {name: count for name, count in snapshot.items() if name not in AUDIT}


def test_author_may_not_approve(changes, team, master_data, db_snapshot, audit_seq,
                                audit_since):
    number = changes.submitted(team.qa1)  # raised by a QA approver
    before, start = db_snapshot(), audit_seq()
    refused = changes.approve(team.qa1, number)
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert _without_audit(db_snapshot()) == _without_audit(before)
    assert [a for a, _, _ in audit_since(start)] == ["signature.refused"]
    assert changes.get(team.qa1, number).get_json()["approvals"] == []


def test_nobody_approves_twice(changes, team, master_data, db_snapshot, audit_seq,
                               audit_since):
    number = changes.submitted(team.raiser, risk="high")
    changes.ok(team.qa1, number, "approve", meaning="approved")
    before, start = db_snapshot(), audit_seq()
    refused = changes.approve(team.qa1, number)  # qa_2 is open, but not for anna.qa
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert _without_audit(db_snapshot()) == _without_audit(before)
    assert [a for a, _, _ in audit_since(start)] == ["signature.refused"]
    record = changes.get(team.qa1, number).get_json()
    assert [(s["slot"], s["filled_by"]) for s in record["approvals_required"]] == \
        [("qa_1", "anna.qa"), ("qa_2", None), ("production", None)]


def test_a_signer_holding_both_roles_fills_one_slot_only(changes, team, master_data,
                                                         make_user):
    both = make_user("dora.dual", "qa_approver", "production")
    number = changes.submitted(team.raiser, risk="medium")
    record = changes.ok(both, number, "approve", meaning="approved")
    assert record["approvals"][0]["slot"] == "qa_1"
    refused = changes.approve(both, number)  # the production slot is open, and dora holds it
    assert refused.status_code == 403


def test_no_open_slot_for_the_signers_roles(changes, team, master_data, db_snapshot):
    low = changes.submitted(team.raiser, risk="low")
    medium = changes.submitted(team.raiser, risk="medium")
    changes.ok(team.prod, medium, "approve", meaning="approved")
    changes.headers(team.prod2)
    before = db_snapshot()
    production_on_low = changes.approve(team.prod, low)
    assert production_on_low.status_code == 409
    assert production_on_low.get_json()["open_slots"] == ["qa_1"]
    assert "qa_1 (role qa_approver)" in production_on_low.get_json()["detail"]
    second_production = changes.approve(team.prod2, medium)
    assert second_production.status_code == 409
    assert second_production.get_json()["open_slots"] == ["qa_1"]
    assert db_snapshot() == before


def test_roles_without_the_permission_are_refused(changes, team, master_data, db_snapshot):
    number = changes.submitted(team.raiser)
    changes.headers(team.inspector), changes.headers(team.auditor)
    before = db_snapshot()
    for user in (team.inspector, team.auditor):
        refused = changes.approve(user, number)
        assert refused.status_code == 403
        assert refused.get_json()["type"].endswith("/not-permitted")
        assert changes.transition(user, number, "reject", meaning="rejected",
                                  reason="no").status_code == 403
    raise_refused = changes.create(team.inspector)
    assert raise_refused.status_code == 403
    assert db_snapshot() == before


def test_wrong_password_on_approval_is_refused_and_audited(changes, team, master_data,
                                                           db_snapshot, audit_seq,
                                                           audit_since):
    number = changes.submitted(team.raiser)
    changes.headers(team.qa1)  # the token exists before the measurements start
    before, start = db_snapshot(), audit_seq()
    refused = changes.transition(team.qa1, number, "approve", meaning="approved",
                                 password="not the password at all")
    assert refused.status_code == 403
    assert [a for a, _, _ in audit_since(start)] == ["identity.login.failed",
                                                     "signature.refused"]
    after = db_snapshot()
    assert {n: c for n, c in after.items() if n not in (*AUDIT, "users")} == \
        {n: c for n, c in before.items() if n not in (*AUDIT, "users")}
    assert changes.get(team.qa1, number).get_json()["state"] == "in_approval"


def test_workflow_order_is_enforced(changes, team, master_data, db_snapshot):
    draft = changes.create_number(team.raiser)
    changes.headers(team.qa1)
    before = db_snapshot()
    not_submitted = changes.approve(team.qa1, draft)
    assert not_submitted.status_code == 409
    assert not_submitted.get_json()["open_actions"] == ["submit", "cancel"]
    too_early = changes.post(team.qa1, draft, "/implementation",
                             {"notes": "x", "reason": "y"})
    assert too_early.status_code == 409
    verification = changes.post(team.qa1, draft, "/verification",
                                {"result": "effective", "reason": "y"})
    assert verification.status_code == 409
    assert db_snapshot() == before


def test_submit_needs_a_complete_change(changes, team, master_data, db_snapshot):
    number = changes.create_number(team.raiser, impacted_items=[], justification="")
    before = db_snapshot()
    refused = changes.transition(team.raiser, number, "submit")
    assert refused.status_code == 409
    assert refused.get_json()["missing"] == ["justification", "impacted_items"]
    assert db_snapshot() == before


def test_cancel_needs_a_reason(changes, team, master_data, db_snapshot):
    number = changes.create_number(team.raiser)
    before = db_snapshot()
    refused = changes.transition(team.raiser, number, "cancel")
    assert refused.status_code == 422 and "reason" in refused.get_json()["errors"]
    assert db_snapshot() == before
    cancelled = changes.ok(team.raiser, number, "cancel", reason="duplicate of another change")
    assert (cancelled["state"], cancelled["transitions"]) == ("cancelled", [])


def test_whoever_implemented_the_change_does_not_close_it(changes, team, master_data,
                                                        db_snapshot, audit_seq, audit_since):
    """Approve, implement and close by one person would leave the change unchecked by
    anyone else: the implementer's closure is refused."""
    number = changes.submitted(team.raiser, risk="low")
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.post(team.qa1, number, "/implementation", {"notes": "Blender B3 installed.",
                                                       "reason": "implemented"})
    changes.ok(team.qa1, number, "implement", meaning="performed")
    changes.post(team.qa2, number, "/verification", {"result": "effective",
                                                     "reason": "verified"})
    changes.ok(team.qa2, number, "verify", meaning="verified")
    before, start = db_snapshot(), audit_seq()
    refused = changes.transition(team.qa1, number, "close", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert _without_audit(db_snapshot()) == _without_audit(before)
    assert [a for a, _, _ in audit_since(start)] == ["signature.refused"]


def test_a_wrong_password_is_refused_before_the_readiness_rules(app, changes, team, master_data,
                                                                slow_work, audit_seq,
                                                                audit_since):
    """Only the QA approver who recorded the verification may sign it (a before_transition
    rule, which the signature look-ahead does not run). A wrong password from another one
    is still a wrong password: refused, audited, counted toward the lockout and throttled
    before that rule answers 409, so guessing there costs what guessing anywhere costs. The
    right password goes on to the rule."""
    number = changes.submitted(team.raiser)
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.post(team.prod, number, "/implementation", {"notes": "Done.", "reason": "done"})
    changes.ok(team.prod, number, "implement", meaning="performed")
    recorded = changes.post(team.qa1, number, "/verification", {
        "result": "effective", "notes": "Checked", "reason": "own check"})
    assert recorded.status_code == 200, recorded.get_json()
    changes.headers(team.qa2)  # the token exists before the counting starts
    start, counted = audit_seq(), slow_work()
    statuses = [changes.transition(team.qa2, number, "verify", meaning="verified",
                                   password=f"wrong guess {n}").status_code for n in range(8)]
    assert statuses == [403] * 4 + [429] * 4  # 4 per address and username, then throttled
    assert counted() == (4, 4)  # the throttled ones hashed nothing
    assert failed_attempts(app, team.qa2.username) == 4
    refusal = ["identity.login.failed", "signature.refused"]
    # the fourth failure is the address's share of the lockout: reported urgently
    assert [a for a, _, _ in audit_since(start)] == \
        refusal * 3 + ["identity.login.failed", "identity.login.client_limit_reached",
                       "signature.refused"]
    assert changes.get(team.qa2, number).get_json()["state"] != "closed"


def test_the_right_password_goes_on_to_the_readiness_rules(app, changes, team, master_data,
                                                           db_snapshot):
    number = changes.submitted(team.raiser)
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.post(team.prod, number, "/implementation", {"notes": "Done.", "reason": "done"})
    changes.ok(team.prod, number, "implement", meaning="performed")
    changes.post(team.qa1, number, "/verification", {"result": "effective",
                                                     "notes": "Checked", "reason": "own check"})
    changes.headers(team.qa2)
    before = db_snapshot()
    refused = changes.transition(team.qa2, number, "verify", meaning="verified")
    assert refused.status_code == 409  # the rule's refusal: nothing written, not even audit
    assert db_snapshot() == before
