"""Input that the database or the audit trail cannot hold (lone surrogates, NUL and the other
C0 control characters, numbers beyond +-(2**53 - 1)) is refused on every endpoint with a 422
problem+json naming the field, before anything is written or audited."""
from __future__ import annotations

import json

import pytest

import qms.documents.api  # noqa: F401  (registers the record type and its routes before any app)
from audit import trail
from qms.api.spec import text_problem

SURROGATE, NUL, BELL, ESC = "\ud800", "\x00", "\x07", "\x1b"
HUGE = 10**20
PASSWORD = "x" * 12


def send(client, method: str, path: str, body, headers: dict | None = None):
    """``body`` as raw JSON text, the way a client sends it: json.dumps writes a lone
    surrogate as the escape \\ud800 and NUL as \\u0000."""
    return client.open(path, method=method, data=json.dumps(body),
                       content_type="application/json", headers=headers or {})


def assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/invalid-input")
    assert field in problem["errors"], problem


def login_failures(app) -> list[trail.Event]:
    with app.extensions["qms"].db.engine.connect() as connection:
        return trail.query_events(connection, action="identity.login.failed")


@pytest.fixture
def auditor(make_user, auth_headers) -> dict:
    return auth_headers(make_user("otto.auditor", "auditor"))


@pytest.mark.parametrize("username", [SURROGATE, "bob" + NUL, "bob" + BELL, ESC + "[31mbob"])
def test_token_request_with_unfit_username_is_refused_and_not_audited(client, db_snapshot,
                                                                      username):
    before = db_snapshot()
    response = send(client, "POST", "/api/v1/auth/tokens",
                    {"username": username, "password": PASSWORD})
    assert_refused(response, "username")
    assert db_snapshot() == before


def test_unusual_but_valid_username_is_still_audited(app, client):
    username = "ghost\twith tab, ü, ✓ and 😀"
    response = send(client, "POST", "/api/v1/auth/tokens",
                    {"username": username, "password": PASSWORD})
    assert response.status_code == 401
    [failed] = login_failures(app)
    assert failed.actor == "anonymous" and failed.data["username"] == username


@pytest.mark.parametrize("field, value", [("title", "SOP" + NUL), ("title", "\x1f"),
                                          ("summary", "line 3" + SURROGATE)])
def test_document_with_unfit_text_is_refused(client, author, db_snapshot, field, value):
    body = {"title": "Cleaning of line 3", "doc_type": "sop", field: value}
    before = db_snapshot()
    assert_refused(send(client, "POST", "/api/v1/documents", body, author), field)
    assert db_snapshot() == before


@pytest.mark.parametrize("body, field", [
    ({"changes": {"summary": "Wet clean."}, "reason": "typo" + BELL}, "reason"),
    ({"changes": {"summary": "Wet clean."}, "reason": SURROGATE}, "reason"),
    # noncharacters XML cannot hold (the B2MML messages to the ERP carry reasons)
    ({"changes": {"summary": "Wet clean."}, "reason": "recall \uffff"}, "reason"),
    ({"changes": {"summary": "Wet \ufffe clean."}, "reason": "typo"}, "changes.summary"),
    ({"changes": {"title": "SOP" + NUL}, "reason": "typo"}, "changes.title"),
    ({"changes": {"summary": "Wet clean."}, "reason": "typo", "version": HUGE}, "version"),
    ({"changes": {"summary": "Wet clean."}, "reason": "typo", "version": -HUGE}, "version"),
    ({"changes": {"summary": "Wet clean."}, "reason": "typo", "version": 1e20}, "version"),
    ({"changes": {"ti\x00tle": "SOP"}, "reason": "typo"}, "changes.ti\\x00tle"),
])
def test_edit_with_unfit_input_is_refused(client, author, draft, db_snapshot, body, field):
    before = db_snapshot()
    assert_refused(send(client, "PATCH", f"/api/v1/documents/{draft}", body, author), field)
    assert db_snapshot() == before


def test_non_finite_number_in_the_body_is_refused(client, author, draft, db_snapshot):
    before = db_snapshot()  # Python's JSON parser accepts NaN, which JSON does not know
    response = client.patch(f"/api/v1/documents/{draft}", headers=author,
                            content_type="application/json",
                            data='{"changes": {"summary": "x"}, "reason": "r", "version": NaN}')
    assert_refused(response, "version")
    assert db_snapshot() == before


def test_signature_with_unfit_username_is_refused(client, author, draft, db_snapshot):
    body = {"action": "submit", "signature": {"username": SURROGATE, "password": PASSWORD,
                                              "meaning": "reviewed"}}
    before = db_snapshot()
    response = send(client, "POST", f"/api/v1/documents/{draft}/transitions", body, author)
    assert_refused(response, "signature.username")
    assert db_snapshot() == before


@pytest.mark.parametrize("query", [f"seq_from={HUGE}", f"seq_to={HUGE}", f"offset={HUGE}",
                                   f"limit={HUGE}", f"offset=-{HUGE}", "seq_from=9007199254740992"])
def test_huge_integers_in_audit_event_queries_are_refused(client, auditor, query):
    response = client.get(f"/api/v1/audit/events?{query}", headers=auditor)
    assert_refused(response, query.partition("=")[0])


@pytest.mark.parametrize("query", [f"offset={HUGE}", f"limit={HUGE}"])
def test_huge_integers_in_document_queries_are_refused(client, author, query):
    response = client.get(f"/api/v1/documents?{query}", headers=author)
    assert_refused(response, query.partition("=")[0])


def test_largest_safe_integer_is_accepted(client, auditor):
    response = client.get("/api/v1/audit/events?seq_from=9007199254740991&offset=9007199254740991",
                          headers=auditor)
    assert response.status_code == 200 and response.get_json()["events"] == []


def test_unfit_query_and_path_arguments_are_refused(client, auditor, author, db_snapshot):
    before = db_snapshot()
    assert_refused(client.get("/api/v1/audit/events?actor=bob%00", headers=auditor), "actor")
    assert_refused(client.get("/api/v1/documents/DOC%00", headers=author), "number")
    assert_refused(send(client, "DELETE", f"/api/v1/auth/tokens/{HUGE}", {"reason": "lost"},
                        author), "token_id")
    assert db_snapshot() == before


def test_deeply_nested_body_is_refused(client, db_snapshot):
    before = db_snapshot()
    response = client.post("/api/v1/auth/tokens", content_type="application/json",
                           data="[" * 100_000 + "]" * 100_000)
    assert_refused(response, "_body")
    assert db_snapshot() == before


def test_canonical_error_that_escapes_the_check_is_422_and_rolled_back(
        client, db_snapshot, monkeypatch):
    """Should the central check ever miss a value, the audit trail's encoder still refuses
    it: a 422, not a 500, and the request's transaction is rolled back. Here the check is
    switched off and the unknown-user event gets the raw username before any lookup."""
    from qms.auditing import record_event

    def audit_first(session, _security, username, _password, *, purpose):
        record_event(session, actor="anonymous", action="identity.login.failed",
                     data={"username": username, "purpose": purpose})

    monkeypatch.setattr("qms.api.spec.unfit_values", lambda *args, **kwargs: iter(()))
    monkeypatch.setattr("qms.api.auth.check_credentials", audit_first)
    before = db_snapshot()
    response = send(client, "POST", "/api/v1/auth/tokens",
                    {"username": "bob" + SURROGATE, "password": PASSWORD})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "surrogate" in response.get_json()["detail"]
    assert db_snapshot() == before


@pytest.mark.parametrize("text, kind", [("a\x07", "U+0007 (a control character)"),
                                        ("a" + SURROGATE, "(an unpaired surrogate)"),
                                        ("a\uffff", "U+FFFF (a noncharacter)"),
                                        ("a\ufffe", "U+FFFE (a noncharacter)")])
def test_the_refusal_names_the_kind_of_unfit_character(text, kind):
    assert kind in text_problem(text)
