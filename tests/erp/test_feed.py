"""The outbox and the pull feed over HTTP: lot status changes queue events in the deciding
transaction; an ERP service account reads them after a cursor and acknowledges them; a
refused decision queues nothing."""
from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from qms.erp.feed import encode_cursor
from qms.erp.models import ErpEvent
from tests.materials.conftest import MaterialsClient
from tests.materials.support import audit_events_after


@pytest.fixture
def erp(client, auth_headers, make_user):
    team = SimpleNamespace(production=make_user("paul.production", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           feed=make_user("sap.feed", "erp"),
                           auditor=make_user("otto.auditor", "auditor"))
    api = MaterialsClient(client, auth_headers, team)
    api.issue_tokens()
    api.material("RM-API")
    api.supplier("SUP-ACME")
    return api


def _events(app) -> int:
    with app.extensions["qms"].db.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(ErpEvent))


def test_status_changes_are_read_in_order_and_acknowledged(app, erp, chain_intact):
    team = erp.team
    released = erp.received("RM-API", quantity="12.5")
    rejected = erp.received("RM-API", release=False)
    erp.ok(erp.transition(team.approver, f"/lots/{rejected}", "reject", meaning="rejected",
                          reason="damaged drums"))

    page = erp.ok(erp.get(team.feed, "/erp/events"))
    first, second = page["events"]
    assert (first["type"], first["lot"], first["status"], first["previous_status"],
            first["disposition"], first["usage_decision"], first["quantity"],
            first["unit"], first["material"]) == (
        "lot.status_changed", released, "released", "quarantine", "Unrestricted", "A",
        "12.5", "kg", "RM-API")
    assert first["decided_by"]["username"] == "anna.approver"
    assert first["decided_by"]["meaning"] == "released"
    assert isinstance(first["decided_by"]["signature_id"], int)
    assert first["expires_on"] == (date.today() + timedelta(days=365)).isoformat()
    assert (second["lot"], second["disposition"], second["usage_decision"],
            second["reason"]) == (rejected, "Restricted", "R", "damaged drums")
    assert [first["sequence"], second["sequence"]] == [1, 2]

    after = erp.ok(erp.get(team.feed, "/erp/events", after=page["next_cursor"]))
    assert after == {"events": [], "next_cursor": page["next_cursor"]}

    assert erp.ok(erp.post(team.feed, "/erp/acks", {"event_ids": [first["event_id"]]})) == \
        {"acknowledged": 1}
    assert erp.ok(erp.post(team.feed, "/erp/acks", {"event_ids": [first["event_id"]]})) == \
        {"acknowledged": 0}  # idempotent
    unacknowledged = erp.ok(erp.get(team.feed, "/erp/events"))["events"]
    assert [e["event_id"] for e in unacknowledged] == [second["event_id"]]
    actions = [event[0] for event in audit_events_after(app)]
    assert actions.count("erp.feed.read") == 2 and actions.count("erp.message.acknowledged") == 1
    assert chain_intact()


def test_a_page_ends_at_the_limit_and_the_cursor_continues(erp):
    lots = [erp.received("RM-API") for _ in range(3)]
    page = erp.ok(erp.get(erp.team.feed, "/erp/events", limit=2))
    assert [e["lot"] for e in page["events"]] == lots[:2]
    rest = erp.ok(erp.get(erp.team.feed, "/erp/events", after=page["next_cursor"], limit=2))
    assert [e["lot"] for e in rest["events"]] == lots[2:]


def test_bad_feed_input_is_refused_and_changes_nothing(erp, db_snapshot):
    erp.received("RM-API")
    before = db_snapshot()
    for query in ({"after": "not-a-cursor"}, {"after": encode_cursor(1) + "x"},
                  {"limit": "0"}, {"limit": "1001"}):
        response = erp.get(erp.team.feed, "/erp/events", **query)
        assert response.status_code == 422, query
    for body in ({"event_ids": ["0" * 36]}, {"event_ids": []}, {"event_ids": "x"}, {}):
        response = erp.post(erp.team.feed, "/erp/acks", body)
        assert response.status_code == 422, body
        assert response.get_json()["errors"].get("event_ids"), body
    assert db_snapshot() == before


def test_only_erp_accounts_read_the_feed(erp):
    for user in (erp.team.auditor, erp.team.approver):
        assert erp.get(user, "/erp/events").status_code == 403
        assert erp.post(user, "/erp/acks", {"event_ids": ["0" * 36]}).status_code == 403


def test_a_refused_decision_queues_no_event(app, erp):
    expired = erp.received("RM-API", release=False,
                           expires_on=(date.today() + timedelta(days=1)).isoformat())
    with app.extensions["qms"].db.engine.begin() as connection:  # past its expiry, job not run
        connection.exec_driver_sql(
            "UPDATE lots SET expires_on = ? WHERE number = ?" if connection.dialect.name ==
            "sqlite" else "UPDATE lots SET expires_on = %s WHERE number = %s",
            ((date.today() - timedelta(days=1)).isoformat(), expired))
    before = _events(app)
    response = erp.transition(erp.team.approver, f"/lots/{expired}", "release",
                              meaning="released")
    assert response.status_code == 409
    assert _events(app) == before
