"""The scheduled CAPA overdue check: one audit event per overdue action and per overdue
effectiveness check, however many times the job runs."""
from __future__ import annotations

from datetime import date, timedelta

from qms.capa.jobs import report_overdue_capa
from tests.deviations.support import audit_events, audit_head, chain_verified

TODAY = date.today()
CAPA = {"source": "other", "source_reference": "Management review 2026",
        "title": "Training records", "problem_statement": "Training records are late."}


def run_job(app, today: date) -> list[dict]:
    state = app.extensions["qms"]
    with app.app_context(), state.db.unit_of_work() as session:
        return report_overdue_capa(session, today)


def implementing_capa(api, team, dues: list[int]) -> str:
    number = api.ok(api.post(team.reviewer, "capas", {
        **CAPA, "owner": "pia.production",
        "effectiveness_due_on": (TODAY + timedelta(days=20)).isoformat()}), 201)["number"]
    for n, days in enumerate(dues, start=1):
        api.ok(api.post(team.reviewer, f"capas/{number}/actions", {
            "description": f"Step {n}", "owner": "ivan.inspector", "reason": "planned",
            "due_on": (TODAY + timedelta(days=days)).isoformat()}), 201)
    api.ok(api.transition(team.reviewer, f"capas/{number}", "start_implementation"))
    return number


def test_each_overdue_item_raises_one_event(app, api, team):
    late = implementing_capa(api, team, dues=[5, 15])
    checked = implementing_capa(api, team, dues=[1])
    api.ok(api.post(team.inspector, f"capas/{checked}/actions/1/complete",
                    {"evidence": "Done."}))
    api.ok(api.transition(team.reviewer, f"capas/{checked}", "submit_effectiveness_check"))
    start = audit_head(app)

    assert run_job(app, TODAY + timedelta(days=3)) == []
    first = run_job(app, TODAY + timedelta(days=10))
    assert [(r["event"], r["capa"], r.get("action")) for r in first] == [
        ("capa.action.overdue", late, 1)]
    later = run_job(app, TODAY + timedelta(days=25))
    assert [(r["event"], r["capa"], r.get("action")) for r in later] == [
        ("capa.action.overdue", late, 2), ("capa.effectiveness.overdue", checked, None)]
    assert run_job(app, TODAY + timedelta(days=40)) == []

    events = audit_events(app, start)
    assert events == [("capa.action.overdue", "system", late),
                      ("capa.action.overdue", "system", late),
                      ("capa.effectiveness.overdue", "system", checked)]
    reported = api.ok(api.get(team.auditor, f"capas/{late}"))["actions"]
    assert [a["overdue_reported_on"] for a in reported] == [
        (TODAY + timedelta(days=10)).isoformat(), (TODAY + timedelta(days=25)).isoformat()]
    chain_verified(api, team.auditor)


def test_completed_and_cancelled_are_not_overdue(app, api, team):
    done = implementing_capa(api, team, dues=[1])
    api.ok(api.post(team.inspector, f"capas/{done}/actions/1/complete", {"evidence": "Done."}))
    dropped = implementing_capa(api, team, dues=[1])
    api.ok(api.transition(team.approver, f"capas/{dropped}", "cancel", reason="superseded"))
    assert run_job(app, TODAY + timedelta(days=5)) == []
