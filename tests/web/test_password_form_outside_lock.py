"""The password form does its slow work before it locks anything (issue 9, point 10):
loading the signed-in user begins the request's writer, which ends before the current
password, the history and the new password are hashed and the signing key is re-sealed;
meanwhile another writer commits."""
from __future__ import annotations

import pytest

from tests.identity.test_password_change_outside_lock import (  # noqa: F401  (fixture)
    CHANGE_STEPS, NEW, observe, stored, write_while_observed)


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
