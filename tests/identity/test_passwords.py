"""Temporary passwords, policy, history, expiry, and the signing key that follows the password."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from qms.esign import keys
from qms.identity.authentication import find_user
from qms.identity.models import User
from qms.identity.users import reset_password

NEW = "a much better passphrase 42"


def change(client, username, old, new):
    return client.post("/api/v1/auth/password",
                       json={"username": username, "old_password": old, "new_password": new})


def test_temporary_password_user_can_do_nothing_until_changed(app, client, make_user):
    tina = make_user("tina", "auditor", temporary=True)
    refused = client.post("/api/v1/auth/tokens", json={"username": "tina", "password": tina.password})
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/password-change-required")
    assert change(client, "tina", tina.password, NEW).status_code == 204
    token = client.post("/api/v1/auth/tokens", json={"username": "tina", "password": NEW})
    assert token.status_code == 201


def test_admin_reset_revokes_existing_tokens_for_good(app, client, make_user, auth_headers):
    uma = make_user("uma", "auditor")
    headers = auth_headers(uma)
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 200
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        reset_password(session, state.security, actor="system", user=find_user(session, "uma"),
                       temporary_password=state.security.hash_password("temporary-pass-123"),
                       reason="forgotten")
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 401
    # the token stays dead after the user has chosen a new password
    assert change(client, "uma", "temporary-pass-123", NEW).status_code == 204
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 401


def test_password_change_revokes_existing_tokens(app, client, make_user, auth_headers):
    vera = make_user("vera", "auditor")
    headers = auth_headers(vera)
    assert change(client, "vera", vera.password, NEW).status_code == 204
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 401


@pytest.mark.parametrize("new_password, problem", [
    ("short-1", "at least 12"),
    ("victor-is-my-name", "username"),
    ("aaaaaaaaaaaaaaaa", "different characters"),
])
def test_policy_violations_are_422_on_new_password(app, client, make_user, db_snapshot,
                                                   new_password, problem):
    victor = make_user("victor", "auditor", temporary=True)
    before = db_snapshot()
    response = change(client, "victor", victor.password, new_password)
    assert response.status_code == 422
    assert problem in response.get_json()["errors"]["new_password"][0]
    after = db_snapshot()
    assert after == before


def test_last_five_passwords_cannot_be_reused(app, client, make_user):
    wendy = make_user("wendy", "auditor")
    history = [wendy.password] + [f"rotation number {i} xyz" for i in range(1, 5)]
    for old, new in zip(history, history[1:]):
        assert change(client, "wendy", old, new).status_code == 204
    reused = change(client, "wendy", history[-1], wendy.password)
    assert reused.status_code == 422
    assert "last 5" in reused.get_json()["errors"]["new_password"][0]
    assert change(client, "wendy", history[-1], "finally something new 7").status_code == 204


def test_wrong_old_password_counts_as_a_failure(app, client, make_user):
    make_user("xena", "auditor")
    assert change(client, "xena", "not the old one!", NEW).status_code == 401
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "xena").failed_attempts == 1


def test_expired_password_must_be_changed(app, client, make_user):
    yuri = make_user("yuri", "auditor")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        user = find_user(session, "yuri")
        user.password_changed_at -= timedelta(days=state.security.policy.expiry_days + 1)
    refused = client.post("/api/v1/auth/tokens", json={"username": "yuri", "password": yuri.password})
    assert refused.status_code == 403


def test_password_change_rewraps_the_signing_key(app, client, make_user):
    zoe = make_user("zoe", "qa_approver")
    assert change(client, "zoe", zoe.password, NEW).status_code == 204
    with app.extensions["qms"].db.reading() as session:
        user = find_user(session, "zoe")
        key = keys.active_key(session, user.id)
        assert keys.unwrap(key, NEW).public_key() is not None
        with pytest.raises(keys.KeyUnwrapError):
            keys.unwrap(key, zoe.password)


def test_admin_reset_retires_the_key_and_keeps_its_public_half(app, client, make_user, auth_headers):
    make_user("amy", "qa_approver")
    state = app.extensions["qms"]
    with state.db.reading() as session:
        old_key_id = keys.active_key(session, find_user(session, "amy").id).key_id
    with state.db.unit_of_work() as session:
        reset_password(session, state.security, actor="system", user=find_user(session, "amy"),
                       temporary_password=state.security.hash_password("temporary-pass-123"),
                       reason="forgotten")
    headers = auth_headers(make_user("ann", "auditor"))
    listed = client.get("/api/v1/users/amy/keys", headers=headers).get_json()["keys"]
    assert [k["key_id"] for k in listed] == [old_key_id]  # no key under the temporary password
    assert listed[0]["retired_at"] is not None and len(listed[0]["public_key_b64"]) == 44
    assert change(client, "amy", "temporary-pass-123", NEW).status_code == 204
    listed = client.get("/api/v1/users/amy/keys", headers=headers).get_json()["keys"]
    assert listed[0]["key_id"] == old_key_id and listed[0]["retired_at"] is not None
    assert listed[1]["retired_at"] is None and len(listed) == 2


def test_passwords_are_argon2id(app, make_user):
    make_user("hash.check", "auditor")
    with app.extensions["qms"].db.reading() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "hash.check"))
    assert stored.startswith("$argon2id$")
