"""The web forms refuse what the API refuses (lone surrogates, NUL and the other C0 control
characters, numbers beyond 2**53 - 1): the form shows the error, or the page answers 400,
never 500, and nothing is written or audited."""
from __future__ import annotations

import json

import pytest

from audit import trail

SURROGATE, NUL = "\ud800", "\x00"
HUGE = 10**20
ROW = '<td class="num"><code>'
FIELD_ERROR = 'class="field-error"'


def login_failures(app) -> list[trail.Event]:
    with app.extensions["qms"].db.engine.connect() as connection:
        return trail.query_events(connection, action="identity.login.failed")


def post_json(client, path: str, token: str, body: dict):
    """A form posted as raw JSON text (Flask-WTF reads it as form data; CSRFProtect takes
    the token from the header). json.dumps writes a lone surrogate as the escape \\ud800."""
    return client.post(path, content_type="application/json", data=json.dumps(body),
                       headers={"X-CSRFToken": token})


@pytest.fixture
def auditor(make_user, sign_in):
    user = make_user("aud1", "auditor")
    assert sign_in(user).status_code == 302
    return user


@pytest.mark.parametrize("page", [HUGE, 2**53, -HUGE])
def test_huge_audit_page_number_is_400(client, auditor, page):
    assert client.get(f"/audit?page={page}").status_code == 400


@pytest.mark.parametrize("field", ["seq_from", "seq_to"])
def test_huge_seq_filter_is_shown_as_a_field_error(client, auditor, field):
    response = client.get(f"/audit?{field}={HUGE}")
    assert response.status_code == 200
    assert response.text.count(FIELD_ERROR) == 1 and ROW not in response.text


def test_largest_safe_seq_filter_is_run(client, auditor):
    response = client.get("/audit?seq_from=9007199254740991&page=9007199254740991")
    assert response.status_code == 200 and FIELD_ERROR not in response.text


@pytest.mark.parametrize("query", ["actor=bob%00", "entity_id=%1b%5B31m", "action=%07"])
def test_control_character_in_a_filter_is_shown_as_a_field_error(client, auditor, query):
    response = client.get(f"/audit?{query}")
    assert response.status_code == 200
    assert response.text.count(FIELD_ERROR) == 1 and ROW not in response.text


def test_surrogate_in_the_login_form_is_refused_and_not_audited(client, csrf, make_user,
                                                                db_snapshot):
    """Flask-WTF reads a JSON body as form data, and JSON can carry a lone surrogate."""
    make_user("bob", "inspector")
    token = csrf("/login")
    before = db_snapshot()
    response = post_json(client, "/login", token,
                         {"username": "bob" + SURROGATE, "password": "x" * 12})
    assert response.status_code == 200
    assert FIELD_ERROR in response.text and "bob\ufffd" in response.text
    assert db_snapshot() == before


@pytest.mark.parametrize("fields", [{"username": "bob" + NUL}, {"password": "pass\x1fword"},
                                    {"username": {"name": "bob"}, "password": 5}])
def test_unfit_login_fields_are_refused_and_not_audited(client, csrf, make_user, db_snapshot,
                                                        fields):
    make_user("bob", "inspector")
    token = csrf("/login")
    before = db_snapshot()
    response = post_json(client, "/login", token,
                         {"username": "bob", "password": "x" * 12, **fields})
    assert response.status_code == 200 and FIELD_ERROR in response.text
    assert db_snapshot() == before


def test_nul_in_a_posted_login_form_is_refused(client, csrf, db_snapshot):
    token = csrf("/login")
    before = db_snapshot()
    response = client.post("/login", data={"csrf_token": token, "username": "bob" + NUL,
                                            "password": "x" * 12})
    assert response.status_code == 200 and FIELD_ERROR in response.text
    assert db_snapshot() == before


def test_unusual_but_valid_username_is_still_audited(app, client, csrf):
    username = "ghost\twith tab, ü, ✓ and 😀"
    response = client.post("/login", data={"csrf_token": csrf("/login"), "username": username,
                                            "password": "x" * 12})
    assert response.status_code == 401
    [failed] = login_failures(app)
    assert failed.actor == "anonymous" and failed.data["username"] == username


def test_control_character_in_a_new_password_is_refused(client, csrf, make_user, sign_in,
                                                        db_snapshot):
    user = make_user("carol", "inspector")
    sign_in(user)
    token = csrf("/password")
    before = db_snapshot()
    new = "a much longer new\x1bpassword"
    response = client.post("/password", data={
        "csrf_token": token, "current_password": user.password, "new_password": new,
        "confirm_password": new})
    assert response.status_code == 200 and FIELD_ERROR in response.text
    assert db_snapshot() == before
