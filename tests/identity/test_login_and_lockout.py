"""Login by token, failures, lockout (Annex 11 §12) and their audit events."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from audit import trail
from qms.identity.models import User


def events(app, action: str):
    with app.extensions["qms"].db.engine.connect() as connection:
        return trail.query_events(connection, action=action, limit=1000)


def failed_attempts(app, username: str) -> int:
    with app.extensions["qms"].db.reading() as session:
        return session.scalar(select(User.failed_attempts).where(User.username == username))


def wrong_guesses(client, username: str, count: int,
                  password: str = "not-the-password") -> list[int]:
    """The statuses of ``count`` wrong token requests for ``username``, four from each client
    address in turn: one address may fail only four times at an account ([ratelimit]
    failures_per_address_and_username), so a lockout takes two of them."""
    return [client.post("/api/v1/auth/tokens", json={"username": username, "password": password},
                        environ_base={"REMOTE_ADDR": f"192.0.2.{1 + n // 4}"}).status_code
            for n in range(count)]


def test_token_issue_is_audited_and_expires_in_8_hours(app, client, make_user):
    alice = make_user("alice", "qa_reviewer")
    response = client.post("/api/v1/auth/tokens",
                           json={"username": "alice", "password": alice.password})
    assert response.status_code == 201
    body = response.get_json()
    assert body["token"].startswith("qms_")
    hours = (datetime.fromisoformat(body["expires_at"]) - datetime.now(timezone.utc)).total_seconds() / 3600
    assert 7.9 < hours <= 8.0
    [created] = events(app, "identity.token.created")
    assert created.actor == "alice" and created.entity_id == "alice"
    assert body["token"] not in created.canonical  # only the prefix is recorded


def test_wrong_password_is_refused_counted_and_audited(app, client, make_user):
    make_user("bob", "inspector")
    response = client.post("/api/v1/auth/tokens", json={"username": "bob", "password": "wrong" * 3})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401
    assert failed_attempts(app, "bob") == 1
    [failed] = events(app, "identity.login.failed")
    assert failed.actor == "bob" and failed.data["failed_attempts"] == 1


def test_unknown_user_is_audited_as_anonymous(app, client):
    response = client.post("/api/v1/auth/tokens", json={"username": "ghost", "password": "x" * 12})
    assert response.status_code == 401
    [failed] = events(app, "identity.login.failed")
    assert failed.actor == "anonymous" and failed.data["username"] == "ghost"


def test_five_failures_lock_the_account_with_an_urgent_event(app, client, make_user):
    carol = make_user("carol", "auditor")
    token = client.post("/api/v1/auth/tokens",
                        json={"username": "carol", "password": carol.password}).get_json()["token"]
    assert wrong_guesses(client, "carol", 5) == [401, 401, 401, 401, 423]
    [locked] = events(app, "identity.user.locked")
    assert locked.data["urgent"] is True and locked.entity_id == "carol"
    # the right password no longer helps, and existing tokens stop working
    again = client.post("/api/v1/auth/tokens", json={"username": "carol", "password": carol.password})
    assert again.status_code == 423
    assert again.get_json()["type"].endswith("/account-locked")
    me = client.get("/api/v1/audit/events", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_a_success_resets_the_failure_count(app, client, make_user):
    dave = make_user("dave", "auditor")
    wrong_guesses(client, "dave", 4)
    assert client.post("/api/v1/auth/tokens",
                       json={"username": "dave", "password": dave.password}).status_code == 201
    assert failed_attempts(app, "dave") == 0


def test_deactivated_user_cannot_log_in_and_tokens_die(app, client, make_user, auth_headers):
    from qms.identity.users import deactivate_user
    from qms.identity.authentication import find_user

    erin = make_user("erin", "auditor")
    headers = auth_headers(erin)
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        deactivate_user(session, actor="system", user=find_user(session, "erin"), reason="left")
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 401
    response = client.post("/api/v1/auth/tokens", json={"username": "erin", "password": erin.password})
    assert response.status_code == 401
    assert len(events(app, "identity.user.deactivated")) == 1


def test_bad_token_requests_are_401_problems(client):
    for headers in ({}, {"Authorization": "Bearer qms_not-a-token"}, {"Authorization": "Basic x"}):
        response = client.get("/api/v1/audit/events", headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"


def test_token_revocation(app, client, make_user, auth_headers):
    frank = make_user("frank", "auditor")
    headers = auth_headers(frank)
    [token] = client.get("/api/v1/auth/tokens", headers=headers).get_json()
    missing_reason = client.delete(f"/api/v1/auth/tokens/{token['token_id']}", headers=headers, json={})
    assert missing_reason.status_code == 422
    assert "reason" in missing_reason.get_json()["errors"]
    revoked = client.delete(f"/api/v1/auth/tokens/{token['token_id']}", headers=headers,
                            json={"reason": "laptop lost"})
    assert revoked.status_code == 204
    assert client.get("/api/v1/auth/tokens", headers=headers).status_code == 401
    [event] = events(app, "identity.token.revoked")
    assert event.reason == "laptop lost"


def test_invalid_login_body_is_422_naming_fields(client, db_snapshot):
    before = db_snapshot()
    response = client.post("/api/v1/auth/tokens", json={"username": 5})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"username", "password"}
    assert client.post("/api/v1/auth/tokens", data="nope").status_code == 422
    assert db_snapshot() == before


def test_a_non_ascii_bearer_token_is_simply_unknown(client):
    response = client.get("/api/v1/audit/events", headers={"Authorization": "Bearer qms_\ud800x"})
    assert response.status_code == 401
