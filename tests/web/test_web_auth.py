"""Sign-in, lockout, sign-out, CSRF, forced password change and the idle timeout, through
the real app with CSRF protection on."""
from __future__ import annotations

import json
import time

import pytest

from qms.identity.models import User
from qms.identity.users import deactivate_user
from qms.web import LAST_ACTIVITY

NEW_PASSWORD = "a brand new passphrase 42"


def location(response) -> str:
    return response.headers["Location"]


def test_login_success_is_audited_and_shows_the_user(client, make_user, sign_in, events):
    user = make_user("insp1", "inspector", full_name="Ida Inspector")
    response = sign_in(user)
    assert response.status_code == 302 and location(response) == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Ida Inspector" in home.text and "insp1" in home.text
    assert "Inspector" in home.text  # the role
    logins = events(action="identity.login.succeeded", actor="insp1")
    assert len(logins) == 1 and json.loads(logins[0].canonical)["data"] == {"channel": "web"}


def test_login_failure_is_audited_and_refused(client, make_user, sign_in, events):
    user = make_user("insp1", "inspector")
    response = sign_in(user, password="wrong password entirely")
    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert len(events(action="identity.login.failed", actor="insp1")) == 1
    assert client.get("/").status_code == 302  # still signed out


def test_unknown_user_gets_the_same_answer(sign_in, events):
    class Nobody:
        username, password = "ghost", "whatever it is 123"
    response = sign_in(Nobody)
    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert len(events(action="identity.login.failed", actor="anonymous")) == 1


def test_five_failures_lock_the_account(client, make_user, sign_in, events):
    user = make_user("insp1", "inspector")
    for _attempt in range(4):
        assert sign_in(user, password="not the password 1").status_code == 401
    # one computer may fail only four times at an account: the fifth failure comes from another
    client.environ_base["REMOTE_ADDR"] = "192.0.2.2"
    fifth = sign_in(user, password="not the password 1")
    assert fifth.status_code == 423
    assert "locked" in fifth.text
    assert len(events(action="identity.user.locked")) == 1
    # even the right password is refused now
    right = sign_in(user)
    assert right.status_code == 423 and "locked" in right.text


def test_logout_requires_post_with_csrf(client, make_user, sign_in, csrf, events):
    user = make_user("insp1", "inspector")
    sign_in(user)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token
    assert client.get("/").status_code == 200  # still signed in
    response = client.post("/logout", data={"csrf_token": csrf("/")})
    assert response.status_code == 302 and location(response) == "/login"
    assert "You have signed out." in client.get("/login").text
    assert client.get("/").status_code == 302
    logouts = events(action="identity.logout.recorded", actor="insp1")
    assert [json.loads(e.canonical)["data"]["why"] for e in logouts] == ["logout"]


def test_post_without_csrf_token_changes_nothing(client, make_user, sign_in, db_snapshot):
    user = make_user("insp1", "inspector", temporary=True)
    before = db_snapshot()
    refused = client.post("/login", data={"username": user.username, "password": user.password})
    assert refused.status_code == 400
    assert db_snapshot() == before
    sign_in(user)
    before = db_snapshot()
    refused = client.post("/password", data={"current_password": user.password,
                                             "new_password": NEW_PASSWORD,
                                             "confirm_password": NEW_PASSWORD})
    assert refused.status_code == 400
    assert "<html" in refused.text  # an HTML error page, not a bare message
    assert db_snapshot() == before


def test_forged_csrf_token_is_refused(client, make_user, db_snapshot):
    user = make_user("insp1", "inspector")
    client.get("/login")
    before = db_snapshot()
    response = client.post("/login", data={"csrf_token": "forged.token.value",
                                           "username": user.username, "password": user.password})
    assert response.status_code == 400
    assert db_snapshot() == before


def test_temporary_password_allows_nothing_but_changing_it(client, make_user, sign_in, csrf,
                                                          events):
    user = make_user("newbie", "qa_reviewer", temporary=True)
    sign_in(user)
    for path in ("/", "/audit", "/api-docs"):
        response = client.get(path)
        assert response.status_code == 302 and location(response) == "/password", path
    form = client.get("/password")
    assert form.status_code == 200 and "temporary" in form.text
    response = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": user.password,
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert response.status_code == 302 and location(response) == "/"
    assert client.get("/").status_code == 200
    assert client.get("/audit").status_code == 200
    assert len(events(action="identity.password.changed", actor="newbie")) == 1


@pytest.mark.parametrize(("new", "confirm", "message"), [
    ("short pw 1", "short pw 1", "Must be at least 12 characters long."),
    ("insp1 is my password", "insp1 is my password", "Must not contain your username."),
    ("aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "Must use at least 5 different characters."),
    (NEW_PASSWORD, NEW_PASSWORD + "x", "The two new passwords differ."),
])
def test_password_policy_errors_are_shown_on_the_form(client, make_user, sign_in, csrf,
                                                     new, confirm, message):
    user = make_user("insp1", "inspector")
    sign_in(user)
    response = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": user.password,
        "new_password": new, "confirm_password": confirm})
    assert response.status_code in (200, 422)
    assert message in response.text


def test_password_reuse_is_refused(client, make_user, sign_in, csrf):
    user = make_user("insp1", "inspector")
    sign_in(user)
    response = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": user.password,
        "new_password": user.password, "confirm_password": user.password})
    assert response.status_code == 422
    assert "Must differ from your last 5 passwords." in response.text


def test_wrong_current_password_counts_toward_lockout(client, make_user, sign_in, csrf, events):
    user = make_user("insp1", "inspector")
    sign_in(user)
    response = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": "not my password at all",
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert response.status_code == 401
    assert "The current password is not correct." in response.text
    failed = events(action="identity.login.failed", actor="insp1")
    assert json.loads(failed[-1].canonical)["data"]["purpose"] == "password_change"


def test_idle_session_is_signed_out_and_audited(client, make_user, sign_in, events):
    user = make_user("insp1", "inspector")
    sign_in(user)
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        session[LAST_ACTIVITY] -= 15 * 60 + 1
    response = client.get("/api-docs")
    assert response.status_code == 302
    assert location(response).startswith("/login?next=/api-docs")
    assert "signed out after 15 minutes without activity" in client.get(location(response)).text
    assert client.get("/").status_code == 302
    logouts = events(action="identity.logout.recorded", actor="insp1")
    assert [json.loads(e.canonical)["data"]["why"] for e in logouts] == ["idle timeout"]


def test_activity_within_the_limit_keeps_the_session(client, make_user, sign_in):
    user = make_user("insp1", "inspector")
    sign_in(user)
    with client.session_transaction() as session:
        session[LAST_ACTIVITY] -= 14 * 60
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        assert session[LAST_ACTIVITY] >= int(time.time()) - 5  # refreshed


def test_deactivated_user_loses_the_session(app, client, make_user, sign_in):
    user = make_user("insp1", "inspector")
    sign_in(user)
    assert client.get("/").status_code == 200
    state = app.extensions["qms"]
    with app.app_context(), state.db.unit_of_work() as session:
        record = session.query(User).filter_by(username="insp1").one()
        deactivate_user(session, actor="admin", user=record, reason="left the company")
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/", "/audit", "/api-docs", "/password"])
def test_every_page_needs_a_session(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert location(response).startswith("/login?next=")


def test_logout_without_a_session_goes_to_login(client, csrf):
    response = client.post("/logout", data={"csrf_token": csrf("/login")})
    assert response.status_code == 302 and location(response).startswith("/login")


def test_login_returns_to_the_page_asked_for_but_never_off_site(client, make_user, sign_in,
                                                                csrf):
    user = make_user("auditor1", "auditor")
    assert location(sign_in(user, next_path="/audit?actor=x")) == "/audit?actor=x"
    client.post("/logout", data={"csrf_token": csrf("/")})
    assert location(sign_in(user, next_path="//evil.example/phish")) == "/"
