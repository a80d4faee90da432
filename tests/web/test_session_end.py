"""A web session ends on the server: a copied session cookie is useless after logout."""
from __future__ import annotations

from tests.web.conftest import csrf_token_of


def _session_cookie(client) -> str:
    return client.get_cookie("qms_session").value


def test_replayed_cookie_after_logout_is_refused(app, client, make_user, sign_in, csrf):
    alice = make_user("alice", "auditor")
    assert sign_in(alice).status_code == 302
    stolen = _session_cookie(client)
    assert client.get("/").status_code == 200
    logout = client.post("/logout", data={"csrf_token": csrf("/")})
    assert logout.status_code == 302
    thief = app.test_client()
    thief.set_cookie("qms_session", stolen)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logout_ends_the_users_other_sessions_too(app, client, make_user, sign_in, csrf):
    bob = make_user("bob", "auditor")
    other = app.test_client()
    other_csrf = other.get("/login").text
    other.post("/login", data={"csrf_token": csrf_token_of(other_csrf), "username": "bob",
                               "password": bob.password, "next": ""})
    assert other.get("/").status_code == 200
    sign_in(bob)
    client.post("/logout", data={"csrf_token": csrf("/")})
    assert other.get("/").status_code == 302
