"""The audit-trail page (permission, filters, paging, chain status), the API reference,
languages, security headers and error pages."""
from __future__ import annotations

import re
from datetime import date, timedelta

from unittest.mock import patch

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from audit.guards import drop_guards
from audit.schema import audit_events
from qms.auditing import record_event
from qms.db import utcnow

ROW = '<td class="num"><code>'


@pytest.fixture
def add_events(app):
    """add_events((actor, action, entity_or_None, reason_or_None), ...) in one transaction."""
    def add(*specs) -> None:
        state = app.extensions["qms"]
        with app.app_context(), state.db.unit_of_work() as session:
            for actor, action, entity, reason in specs:
                record_event(session, actor=actor, action=action, data={"note": action},
                             entity=entity, reason=reason)
    return add


@pytest.fixture
def auditor(make_user, sign_in):
    user = make_user("aud1", "auditor", full_name="Alice Auditor")
    sign_in(user)
    return user


@pytest.fixture
def sample_events(add_events, auditor):
    add_events(("bob", "deviation.record.created", ("deviation", "DEV-2026-00001"), None),
               ("carol", "capa.record.created", ("capa", "CAPA-2026-00001"), None),
               ("bob", "deviation.record.updated", ("deviation", "DEV-2026-00001"), "typo fixed"))


def shown_actions(response) -> set[str]:
    return set(re.findall(r'<code class="action">([^<]+)</code>', response.text))


def test_audit_page_requires_audit_read(client, make_user, sign_in):
    sign_in(make_user("insp1", "inspector"))
    response = client.get("/audit")
    assert response.status_code == 403
    assert "You do not have permission to open this page." in response.text
    assert 'href="/audit"' not in client.get("/").text  # no link to a page one cannot open


def test_audit_page_lists_events_with_every_column(client, sample_events):
    response = client.get("/audit")
    assert response.status_code == 200
    page = response.text
    for text in ("deviation.record.updated", "DEV-2026-00001", "typo fixed", "bob",
                 "identity.login.succeeded", "&#34;note&#34;: &#34;capa.record.created&#34;"):
        assert text in page, text
    assert re.search(r'<code class="hash" title="[^"]*[0-9a-f]{64}[^"]*">[0-9a-f]{12}…', page)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}Z", page)


@pytest.mark.parametrize(("query", "expected"), [
    ("actor=bob", {"deviation.record.created", "deviation.record.updated"}),
    ("action=deviation", {"deviation.record.created", "deviation.record.updated"}),
    ("action=deviation.record.created", {"deviation.record.created"}),
    ("entity_type=capa", {"capa.record.created"}),
    ("entity_type=deviation&entity_id=DEV-2026-00001",
     {"deviation.record.created", "deviation.record.updated"}),
    ("actor=carol&action=deviation", set()),
])
def test_audit_filters(client, sample_events, query, expected):
    response = client.get(f"/audit?{query}")
    assert response.status_code == 200
    assert shown_actions(response) == expected
    if not expected:
        assert "No events match these filters." in response.text


def test_audit_seq_range(client, sample_events, events):
    seq = events(action="capa.record.created")[0].seq
    response = client.get(f"/audit?seq_from={seq}&seq_to={seq}")
    assert shown_actions(response) == {"capa.record.created"}
    later = client.get(f"/audit?seq_from={seq}")
    assert shown_actions(later) == {"capa.record.created", "deviation.record.updated"}


def test_audit_date_range(client, sample_events, events):
    day = date.fromisoformat(events(action="capa.record.created")[0].at[:10])
    # the "to" date includes its whole day
    assert "capa.record.created" in shown_actions(client.get(f"/audit?at_from={day}&at_to={day}"))
    assert shown_actions(client.get(f"/audit?at_to={day - timedelta(days=1)}")) == set()
    assert shown_actions(client.get(f"/audit?at_from={day + timedelta(days=1)}")) == set()


def test_invalid_filters_are_reported_not_run(client, auditor):
    response = client.get("/audit?seq_from=abc&at_from=31.12.2026")
    assert response.status_code == 200
    assert response.text.count('class="field-error"') == 2
    assert ROW not in response.text


def test_audit_paging_newest_first(client, add_events, auditor):
    add_events(*[("bob", f"test.event.n{i:02d}", None, None) for i in range(60)])
    first = client.get("/audit?actor=bob")
    assert first.text.count(ROW) == 50
    assert "test.event.n59" in first.text and "test.event.n09" not in first.text
    older = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert "actor=bob" in older and "page=2" in older
    second = client.get(older)
    assert second.text.count(ROW) == 10
    assert "test.event.n00" in second.text and 'rel="next"' not in second.text
    assert 'rel="prev"' in second.text


@pytest.fixture
def verify_now(client, csrf):
    """verify_now() -> the audit page after its "Verify now" button."""
    def press():
        response = client.post("/audit/verify", data={"csrf_token": csrf("/audit")})
        assert response.status_code == 302 and response.location.endswith("/audit")
        return client.get("/audit")
    return press


def test_chain_status_unanchored_without_a_checkpoint(client, sample_events, verify_now):
    assert "The audit chain has not been verified yet" in client.get("/audit").text
    response = verify_now()
    assert "Audit chain UNANCHORED" in response.text
    assert "Audit chain intact" not in response.text and "BROKEN" not in response.text


def test_chain_status_intact(app, client, sample_events, verify_now):
    from qms.jobs import write_scheduled_checkpoint

    write_scheduled_checkpoint(app)
    response = verify_now()
    assert "Audit chain intact" in response.text
    assert "BROKEN" not in response.text and "UNANCHORED" not in response.text
    assert re.search(r"Verified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, asked for by aud1",
                     response.text)


def test_chain_status_broken_names_the_seq(owner_engine, client, sample_events, events,
                                           verify_now):
    seq = events(action="capa.record.created")[0].seq
    # what an attacker who owns the database can do; detection must not depend on guards
    with owner_engine.begin() as connection:
        drop_guards(connection)
        connection.execute(update(audit_events).where(audit_events.c.seq == seq)
                           .values(actor="mallory"))
    response = verify_now()
    assert f"Audit chain BROKEN at seq {seq}" in response.text
    assert "Audit chain intact" not in response.text


def test_the_page_shows_the_scheduler_s_last_verification_without_verifying(
        app, client, sample_events, db_snapshot):
    """A visit reads the recorded verification: it verifies nothing and writes nothing."""
    from qms.jobs import verify_chain_on_schedule, write_scheduled_checkpoint

    write_scheduled_checkpoint(app)
    verify_chain_on_schedule(app)
    before = db_snapshot()
    page = client.get("/audit").text
    assert "Audit chain intact" in page and "by the scheduler" in page
    assert "may not be running" not in page
    assert db_snapshot() == before


def test_an_old_verification_is_shown_as_overdue(app, client, sample_events, verify_now):
    verify_now()
    app.config["AUDIT_VERIFY_INTERVAL_MINUTES"] = 15
    later = utcnow() + timedelta(minutes=31)
    with patch("qms.web.views.utcnow", return_value=later):
        page = client.get("/audit").text
    assert "No verification in the last 30 minutes: the scheduler (qms jobs) may not be " \
           "running." in page


def test_verify_now_needs_the_csrf_token_and_audit_read(app, client, make_user, sign_in,
                                                        csrf, db_snapshot):
    sign_in(make_user("prod1", "production"))
    before = db_snapshot()
    assert client.post("/audit/verify", data={"csrf_token": csrf("/")}).status_code == 403
    sign_in(make_user("aud2", "auditor"))
    assert client.post("/audit/verify").status_code == 400
    assert db_snapshot()["audit_chain_checks"] == before["audit_chain_checks"]


def test_recorded_verifications_are_append_only(app, client, sample_events, verify_now,
                                               owner_engine):
    verify_now()
    for statement in ("UPDATE audit_chain_checks SET verdict = 'INTACT'",
                      "DELETE FROM audit_chain_checks"):
        with pytest.raises(DBAPIError, match="append-only|audit_chain_checks"), \
                app.extensions["qms"].db.engine.begin() as connection:
            connection.execute(text(statement))


def test_api_docs_render_the_openapi_document_offline(client, make_user, sign_in):
    sign_in(make_user("insp1", "inspector"))
    response = client.get("/api-docs")
    assert response.status_code == 200
    page = response.text
    for text in ("/api/v1/audit/events", "Audit events, filtered", "audit.read", "seq_from",
                 'href="#schema-EventPage"', 'id="schema-VerifyReport"', "first_bad_seq",
                 "/api/v1/auth/tokens", "No token needed", "application/problem+json"):
        assert text in page, text
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_security_headers_on_html(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/assets/qms.css").status_code == 200


def test_chinese_ui_when_chosen(client, csrf):
    assert "Sign in" in client.get("/login").text
    response = client.post("/language", data={"csrf_token": csrf(), "locale": "zh_Hans_CN",
                                              "next": "/login"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login").text
    assert 'lang="zh-Hans-CN"' in page and "登录" in page and "用户名" in page
    assert "Sign in" not in page


@pytest.mark.parametrize(("header", "chinese"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", True), ("zh", True), ("en-US,en;q=0.9", False),
    ("zh-TW,en;q=0.5", False), ("de-DE", False)])
def test_browser_language_is_followed(client, header, chinese):
    page = client.get("/login", headers={"Accept-Language": header}).text
    assert ("登录" in page) is chinese


def test_chinese_audit_page(app, client, csrf, sample_events, verify_now):
    client.post("/language", data={"csrf_token": csrf("/"), "locale": "zh_Hans_CN"})
    page = verify_now().text
    assert "审计追踪" in page and "审计链未锚定" in page
    from qms.jobs import write_scheduled_checkpoint

    write_scheduled_checkpoint(app)
    assert "审计链完整" in verify_now().text


def test_html_error_pages_and_api_problems(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "This page does not exist." in page.text
    api = client.get("/api/v1/no-such-endpoint")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
