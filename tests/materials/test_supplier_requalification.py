"""An edit of a qualified supplier never silently keeps its qualification (issue 9, point 3):
config/workflows.toml returns an approved or conditionally approved supplier to pending in
the edit's own version, so lots are not received from it until QA, who did not make the
edit, qualifies the supplier as it now reads."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("qualify", [
    {"action": "approve", "meaning": "approved"},
    {"action": "approve_conditionally", "meaning": "approved", "reason": "audit pending"}])
def test_an_edit_returns_a_qualified_supplier_for_requalification(basics, team, make_user,
                                                                  audit_events, qualify):
    m = basics
    m.supplier("SUP-EDIT", approve=False)
    qualified = m.ok(m.transition(team.approver, "/suppliers/SUP-EDIT",
                                  qualify["action"], meaning=qualify["meaning"],
                                  reason=qualify.get("reason")))
    assert qualified["state"] != "pending"
    editor = make_user("quinn.qa", "qa_approver")  # may edit and qualify suppliers

    edited = m.ok(m.client.patch("/api/v1/suppliers/SUP-EDIT", headers=m.headers(editor),
                                 json={"changes": {"address": "Industriestrasse 9, Basel"},
                                       "reason": "the supplier moved", "version": 2}))

    assert (edited["state"], edited["version"]) == ("pending", 3)
    assert edited["changed_since_signing"] is True
    assert [s["valid_for_current_version"] for s in edited["signatures"]] == [False]
    updated = [e for e in audit_events() if e[0] == "supplier.record.updated"]
    assert updated == [("supplier.record.updated", "quinn.qa", "SUP-EDIT",
                        "the supplier moved")]
    history = m.ok(m.get(team.auditor, "/suppliers/SUP-EDIT/history"))
    assert history["versions"][-1]["changes"]["state"] == {"before": qualified["state"],
                                                           "after": "pending"}
    assert m.receive(supplier="SUP-EDIT").status_code == 409
    # the editor is an author now: someone else qualifies the supplier as it reads
    own = m.transition(editor, "/suppliers/SUP-EDIT", "approve", meaning="approved")
    assert own.status_code == 403 and "is an author of" in own.get_json()["detail"]
    requalified = m.ok(m.transition(team.approver, "/suppliers/SUP-EDIT", "approve",
                                    meaning="approved"))
    assert requalified["state"] == "approved"
    assert m.ok(m.receive(supplier="SUP-EDIT"), 201)["supplier"] == "SUP-EDIT"


@pytest.mark.parametrize("state", ["pending", "blocked"])
def test_an_edit_of_an_unqualified_supplier_keeps_its_state(basics, team, state):
    m = basics
    m.supplier("SUP-KEEP", approve=False)
    if state == "blocked":
        m.ok(m.transition(team.approver, "/suppliers/SUP-KEEP", "block", reason="no audit"))
    edited = m.ok(m.patch(team.reviewer, "/suppliers/SUP-KEEP", {"contact": "qa@keep.example"}))
    assert edited["state"] == state
