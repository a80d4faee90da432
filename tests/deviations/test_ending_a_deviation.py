"""Ending a deviation lifts the holds of the lots it names, so both ways of ending it are
signed QA decisions (closure and cancel, meaning "approved", by someone who neither raised
nor edited it); and every path locks the lots before the audit head, in lot id order, so that
writers on PostgreSQL cannot deadlock."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tests.deviations.support import audit_events, audit_head, chain_verified

DEVIATION = {"title": "Granulator over temperature", "kind": "unplanned",
             "severity": "minor", "occurred_on": "2026-01-15",
             "description": "The granulator ran at 65 C for 12 minutes (limit 60 C)."}
INVESTIGATION = {"investigation": "Logs.", "root_cause": "Drift.",
                 "impact_assessment": "None.", "capa_required": False}
UNCHANGED_BY_A_REFUSED_SIGNATURE = ("audit_events", "audit_head")


def lot_status(api, user, number: str) -> str:
    return api.ok(api.get(user, f"lots/{number}"))["status"]


def test_cancel_needs_a_signature_and_a_reason(app, api, team, stock, db_snapshot):
    number = api.ok(api.post(team.production, "deviations",
                             {**DEVIATION, "lots": [stock.lot]}), 201)["number"]
    api.headers(team.approver)
    before = db_snapshot()
    unsigned = api.transition(team.approver, f"deviations/{number}", "cancel",
                              reason="raised in error")
    assert unsigned.status_code == 422 and "signature" in unsigned.get_json()["errors"]
    no_reason = api.transition(team.approver, f"deviations/{number}", "cancel",
                               meaning="approved")
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    wrong_meaning = api.transition(team.approver, f"deviations/{number}", "cancel",
                                   reason="raised in error", meaning="reviewed")
    assert wrong_meaning.status_code in (403, 422)
    unchanged = {k: v for k, v in db_snapshot().items()
                 if k not in UNCHANGED_BY_A_REFUSED_SIGNATURE}
    assert unchanged == {k: v for k, v in before.items()
                         if k not in UNCHANGED_BY_A_REFUSED_SIGNATURE}
    assert lot_status(api, team.auditor, stock.lot) == "on_hold"

    cancelled = api.ok(api.transition(team.approver, f"deviations/{number}", "cancel",
                                      reason="raised in error", meaning="approved"))
    assert cancelled["state"] == "cancelled"
    assert [(s["meaning"], s["signer"]) for s in cancelled["signatures"]] == [
        ("approved", team.approver.username)]
    assert lot_status(api, team.auditor, stock.lot) == "released"
    chain_verified(api, team.auditor)


@pytest.mark.parametrize("who", ["raiser", "editor"])
def test_raiser_or_editor_cannot_cancel(app, api, team, stock, make_user, db_snapshot, who):
    both = make_user("alex.approver", "qa_approver")
    raiser = both if who == "raiser" else team.production
    number = api.ok(api.post(raiser, "deviations", {**DEVIATION, "lots": [stock.lot]}),
                    201)["number"]
    api.ok(api.transition(raiser, f"deviations/{number}", "submit_for_investigation"))
    editor = both if who == "editor" else team.reviewer
    api.ok(api.patch(editor, f"deviations/{number}", {"root_cause": "Drift."},
                     reason="first finding"))
    api.headers(both)
    before, start = db_snapshot(), audit_head(app)
    refused = api.transition(both, f"deviations/{number}", "cancel", reason="not needed",
                             meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert [a for a, _, _ in audit_events(app, start)] == ["signature.refused"]
    assert {k: v for k, v in db_snapshot().items()
            if k not in UNCHANGED_BY_A_REFUSED_SIGNATURE} == \
        {k: v for k, v in before.items() if k not in UNCHANGED_BY_A_REFUSED_SIGNATURE}
    assert lot_status(api, team.auditor, stock.lot) == "on_hold"
    api.ok(api.transition(team.approver, f"deviations/{number}", "cancel",
                          reason="not needed", meaning="approved"))
    assert lot_status(api, team.auditor, stock.lot) == "released"


@contextmanager
def statements(app):
    """The SQL statements the app runs inside the block, in order."""
    engine, seen = app.extensions["qms"].db.engine, []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


LOCKS_LOTS = re.compile(r"^SELECT .* FROM lots .*FOR UPDATE OF lots$")
LOCKS_HEAD = re.compile(r"^SELECT .* FROM audit_head .*FOR UPDATE$")


def first(pattern: re.Pattern, seen: list[str]) -> int:
    return next(i for i, statement in enumerate(seen) if pattern.match(statement))


@pytest.mark.parametrize("ending", ["close", "cancel"])
def test_ending_locks_the_lots_before_the_audit_head(app, api, team, stock, backend, ending):
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writers hold the whole database")
    number = api.ok(api.post(team.production, "deviations",
                             {**DEVIATION, "lots": [stock.lot, stock.other_lot]}),
                    201)["number"]
    if ending == "close":
        api.ok(api.transition(team.production, f"deviations/{number}",
                              "submit_for_investigation"))
        api.ok(api.patch(team.reviewer, f"deviations/{number}", INVESTIGATION, reason="done"))
        api.ok(api.transition(team.reviewer, f"deviations/{number}", "submit_for_closure"))
    api.headers(team.approver)
    with statements(app) as seen:
        api.ok(api.transition(team.approver, f"deviations/{number}", ending,
                              reason="ended", meaning="approved"))
    assert first(LOCKS_LOTS, seen) < first(LOCKS_HEAD, seen)
    assert "ORDER BY lots.id" in seen[first(LOCKS_LOTS, seen)]
    assert lot_status(api, team.auditor, stock.other_lot) == "released"


def test_naming_lots_locks_them_in_one_statement_by_id(app, api, team, stock, backend):
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writers hold the whole database")
    api.headers(team.production)
    with statements(app) as seen:
        api.ok(api.post(team.production, "deviations",
                        {**DEVIATION, "lots": [stock.other_lot], "batches": [stock.batch]}),
               201)
    lot_locks = [s for s in seen if LOCKS_LOTS.match(s)]
    assert len(lot_locks) == 1 and "ORDER BY lots.id" in lot_locks[0]
    assert seen.index(lot_locks[0]) < first(LOCKS_HEAD, seen)
