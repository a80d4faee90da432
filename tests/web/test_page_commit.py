"""A page is the request's one commit point (qms.web.page), as an API endpoint is: a failed
sign-in keeps exactly its count and audit event, a refusal through ``refuse`` keeps nothing,
and a sign-in waits for the commit that records it."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from qms.identity.authentication import find_user

NEW_PASSWORD = "a brand new passphrase 42"


def failed_attempts(app, username: str) -> int:
    with app.extensions["qms"].db.reading() as reader:
        return find_user(reader, username).failed_attempts


def test_a_failed_sign_in_keeps_exactly_its_count_and_event(app, make_user, sign_in, events,
                                                            db_snapshot):
    user = make_user("insp1", "inspector")
    before = db_snapshot()
    assert sign_in(user, password="wrong password entirely").status_code == 401
    after = db_snapshot()
    assert after.pop("audit_events") == before.pop("audit_events") + 1
    assert after.pop("audit_head")[0] == before.pop("audit_head")[0] + 1
    assert after == before
    assert failed_attempts(app, "insp1") == 1
    assert events()[-1].action == "identity.login.failed"


def test_a_refused_new_password_keeps_nothing(app, client, make_user, sign_in, csrf,
                                              db_snapshot):
    user = make_user("insp1", "inspector")
    sign_in(user)
    wrong = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": "not my password at all",
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert wrong.status_code == 401 and failed_attempts(app, "insp1") == 1  # kept
    before = db_snapshot()
    reused = client.post("/password", data={
        "csrf_token": csrf("/password"), "current_password": user.password,
        "new_password": user.password, "confirm_password": user.password})
    assert reused.status_code == 422
    assert "Must differ from your last 5 passwords." in reused.text
    # the current password's check passed, but the refusal keeps nothing of it: the API's
    # 422 rolls back the same way
    assert db_snapshot() == before and failed_attempts(app, "insp1") == 1


def test_a_sign_in_waits_for_the_commit_that_records_it(app, client, make_user, sign_in,
                                                        events, monkeypatch):
    user = make_user("insp1", "inspector")
    client.get("/login")  # the session cookie exists before the commits start failing

    def failing_commit(session):
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    app.testing = False  # the failed commit answers 500 instead of reaching the test
    with monkeypatch.context() as patched:
        patched.setattr(Session, "commit", failing_commit)
        assert sign_in(user).status_code == 500
    assert events(action="identity.login.succeeded") == []
    assert client.get("/").status_code == 302  # not signed in


@pytest.mark.parametrize("path", ["/", "/audit", "/api-docs"])
def test_pages_read_without_committing(client, make_user, sign_in, db_snapshot, path):
    sign_in(make_user("aud1", "auditor"))
    before = db_snapshot()
    assert client.get(path).status_code == 200
    assert db_snapshot() == before
