"""Requests on deviations that must be refused and change nothing: segregation of duties at
closure, permissions by state, bad input (422 naming the field)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.deviations.support import audit_events, audit_head

DEVIATION = {"title": "Granulator over temperature", "kind": "unplanned",
             "severity": "minor", "occurred_on": "2026-01-15",
             "description": "The granulator ran at 65 C for 12 minutes (limit 60 C)."}
INVESTIGATION = {"investigation": "Logs.", "root_cause": "Drift.",
                 "impact_assessment": "None.", "capa_required": False}


def pending_closure(api, author, investigator) -> str:
    number = api.ok(api.post(author, "deviations", DEVIATION), 201)["number"]
    api.ok(api.transition(author, f"deviations/{number}", "submit_for_investigation"))
    api.ok(api.patch(investigator, f"deviations/{number}", INVESTIGATION, reason="done"))
    api.ok(api.transition(investigator, f"deviations/{number}", "submit_for_closure"))
    return number


@pytest.mark.parametrize("who", ["author", "investigator"])
def test_author_or_editor_cannot_close(app, api, team, make_user, db_snapshot, who):
    both = make_user("alex.approver", "qa_approver")
    author, investigator = (both, team.reviewer) if who == "author" else (team.production,
                                                                          both)
    number = pending_closure(api, author, investigator)
    api.headers(both)
    before, start = db_snapshot(), audit_head(app)
    refused = api.transition(both, f"deviations/{number}", "close", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    # the refused signature is audited by design; nothing else changes
    assert [a for a, _, _ in audit_events(app, start)] == ["signature.refused"]
    after = db_snapshot()
    assert {k: v for k, v in after.items() if k not in ("audit_events", "audit_head")} == \
        {k: v for k, v in before.items() if k not in ("audit_events", "audit_head")}
    assert api.ok(api.get(team.auditor, f"deviations/{number}"))["state"] == "pending_closure"
    assert api.transition(team.approver, f"deviations/{number}", "close",
                          meaning="approved").status_code == 200


def test_permissions_by_state(api, team, db_snapshot):
    number = api.ok(api.post(team.production, "deviations", DEVIATION), 201)["number"]
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    api.headers(team.auditor), api.headers(team.reviewer), api.headers(team.approver)
    before = db_snapshot()
    # the raiser may not record the investigation, nor close, nor cancel
    assert api.patch(team.production, f"deviations/{number}", {"root_cause": "x"},
                     reason="r").status_code == 403
    assert api.transition(team.reviewer, f"deviations/{number}", "cancel", reason="r",
                          meaning="approved").status_code == 403
    # description fields are closed once the investigation starts
    late = api.patch(team.reviewer, f"deviations/{number}", {"title": "Other"}, reason="r")
    assert late.status_code == 422 and "changes.title" in late.get_json()["errors"]
    # permission before state: who may not close learns nothing of the state (403)
    assert api.transition(team.reviewer, f"deviations/{number}", "close",
                          meaning="approved").status_code == 403
    assert api.transition(team.approver, f"deviations/{number}", "close",
                          meaning="approved").status_code == 409
    assert api.post(team.auditor, "deviations", DEVIATION).status_code == 403
    assert db_snapshot() == before


def test_edit_needs_a_reason_and_a_change(api, team, db_snapshot):
    number = api.ok(api.post(team.production, "deviations", DEVIATION), 201)["number"]
    before = db_snapshot()
    no_reason = api.patch(team.production, f"deviations/{number}", {"severity": "major"})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    same = api.patch(team.production, f"deviations/{number}", {"severity": "minor"},
                     reason="r")
    assert same.status_code == 422
    early = api.patch(team.production, f"deviations/{number}", {"capa_required": True},
                      reason="r")
    assert early.status_code == 422 and "changes.capa_required" in early.get_json()["errors"]
    assert db_snapshot() == before


TOMORROW = (date.today() + timedelta(days=2)).isoformat()


@pytest.mark.parametrize("change, field", [
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 20001}, "description"),
    ({"kind": "accidental"}, "kind"),
    ({"severity": "huge"}, "severity"),
    ({"occurred_on": "2026-13-01"}, "occurred_on"),
    ({"occurred_on": 20260101}, "occurred_on"),
    ({"occurred_on": TOMORROW}, "occurred_on"),
    ({"lots": ["NO-SUCH-LOT"]}, "lots.0"),
    ({"lots": "LOT-1"}, "lots"),
    ({"batches": ["NO-SUCH-BATCH"]}, "batches.0"),
    ({"lots": ["x" * 41]}, "lots.0"),
    ({"capa_required": True}, "capa_required"),
])
def test_bad_input_is_refused_naming_the_field(api, team, stock, db_snapshot, change, field):
    body = {**DEVIATION, "lots": [stock.lot], **change}
    body = {k: v for k, v in body.items() if v is not None}
    api.headers(team.production)
    before = db_snapshot()
    refused = api.post(team.production, "deviations", body)
    assert refused.status_code == 422, refused.get_json()
    assert field in refused.get_json()["errors"]
    assert db_snapshot() == before


def test_unknown_deviation_is_404(api, team):
    assert api.get(team.auditor, "deviations/DEV-2026-99999").status_code == 404
    assert api.post(team.production, "deviations/DEV-2026-99999/lots",
                    {"lots": ["X"], "reason": "r"}).status_code == 404
