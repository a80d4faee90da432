"""The password form does its slow work before it locks anything (issue 9, point 10):
loading the signed-in user begins the request's writer, which ends before the current
password, the history and the new password are hashed and the signing key is re-sealed;
meanwhile another writer commits."""
from __future__ import annotations

import pytest

from qms.identity.authentication import find_user
from qms.identity.users import reset_password
from tests.identity.test_password_change_outside_lock import (  # noqa: F401  (fixture)
    CHANGE_STEPS, NEW, OTHER, observe, really_hashed, stored, while_observed,
    write_while_observed)


@pytest.mark.parametrize("step", CHANGE_STEPS)
def test_another_writer_commits_while_the_password_form_does_its_slow_work(
        app, client, csrf, make_user, sign_in, observe, events, step):
    victim = make_user("victim", "qa_reviewer")
    sign_in(victim)
    token = csrf("/password")
    observed = observe(step)
    answers = []

    def change():
        answers.append(client.post("/password", data={
            "csrf_token": token, "current_password": victim.password, "new_password": NEW,
            "confirm_password": NEW}).status_code)

    before = stored(app, "victim")
    assert write_while_observed(app, observed, change, "victim") == "other writer committed"
    assert answers == [302]
    assert stored(app, "victim", opens_with=NEW)["key_id"] == before["key_id"]
    assert len(events(action="identity.password.changed", actor="victim")) == 1


def test_a_reset_while_the_form_s_change_is_prepared_asks_to_sign_in_again(
        app, client, csrf, make_user, sign_in, observe, uow, events):
    """The form's answer to "changed meanwhile": nothing changed, the session ends and the
    sign-in page says why (not an error page, and not a wrong-password message)."""
    victim = make_user("victim", "qa_reviewer")
    sign_in(victim)
    token = csrf("/password")
    observed = observe("argon2 hash")
    answers = []

    def change():
        answers.append(client.post("/password", data={
            "csrf_token": token, "current_password": victim.password, "new_password": NEW,
            "confirm_password": NEW}))

    def reset():  # while the new password is being hashed
        security = app.extensions["qms"].security
        with uow() as session:
            reset_password(session, security, actor="system",
                           user=find_user(session, "victim", for_update=True),
                           reason="forgotten", temporary_password=really_hashed(security, OTHER))
    while_observed(observed, change, reset)
    assert answers[0].status_code == 302 and answers[0].location.endswith("/login")
    page = client.get("/login").text
    assert "was changed while this change was being made" in page
    assert client.get("/password").status_code == 302  # signed out
    assert stored(app, "victim", opens_with=None)["temporary"]
    assert events(action="identity.password.changed") == []
    assert events(action="identity.login.failed") == []
