"""User administration over the API (issue 9, point 1): the signed-in administrator is the
audit actor; temporary passwords are generated and shown once; refusals change nothing."""
from __future__ import annotations

import pytest

from qms.identity.authentication import find_user

NEW = "her very own secret 9"


@pytest.fixture
def admin(make_user, auth_headers):
    return auth_headers(make_user("ada.admin", "admin"))


def _ok(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_an_administrator_manages_an_account_from_creation_to_deactivation(
        client, admin, uow, audit_seq, audit_since):
    start = audit_seq()
    created = client.post("/api/v1/users", headers=admin, json={
        "username": "bea", "full_name": "Bea Berg", "roles": ["qa_reviewer"]})
    body = _ok(created, 201)
    assert created.headers["Cache-Control"] == "no-store"
    temporary = body.pop("temporary_password")
    assert len(temporary) >= 12 and body["password_temporary"] is True
    assert body["signing_key_id"] is None and body["created_by"] == "ada.admin"
    _ok(client.post("/api/v1/auth/password", json={
        "username": "bea", "old_password": temporary, "new_password": NEW}), 204)
    first_key = _ok(client.get("/api/v1/users/bea", headers=admin))["signing_key_id"]
    assert first_key is not None

    roles = _ok(client.put("/api/v1/users/bea/roles", headers=admin, json={
        "roles": ["qa_reviewer", "inspector"], "reason": "covers the night shift"}))
    assert roles["roles"] == ["inspector", "qa_reviewer"]
    reset = client.post("/api/v1/users/bea/password-reset", headers=admin,
                        json={"reason": "forgotten"})
    assert reset.headers["Cache-Control"] == "no-store"
    assert _ok(reset)["retired_key_id"] == first_key
    assert _ok(client.get("/api/v1/users/bea", headers=admin))["signing_key_id"] is None
    with uow() as session:
        user = find_user(session, "bea")
        user.failed_attempts, user.locked_at = 5, user.created_at
    assert _ok(client.post("/api/v1/users/bea/unlock", headers=admin,
                           json={"reason": "identity confirmed"}))["locked"] is False
    gone = _ok(client.post("/api/v1/users/bea/deactivate", headers=admin,
                           json={"reason": "left the company"}))
    assert gone["active"] is False and gone["deactivated_at"] is not None
    listed = _ok(client.get("/api/v1/users", headers=admin))
    assert [u["username"] for u in listed] == ["ada.admin", "bea"]

    administrative = [(action, actor, reason) for action, actor, _, reason in
                      audit_since(start) if action != "identity.password.changed"]
    assert administrative == [
        ("identity.user.created", "ada.admin", None),
        ("identity.user.roles_changed", "ada.admin", "covers the night shift"),
        ("identity.password.reset", "ada.admin", "forgotten"),
        ("identity.user.unlocked", "ada.admin", "identity confirmed"),
        ("identity.user.deactivated", "ada.admin", "left the company")]


def test_a_service_account_is_created_without_a_password(client, admin):
    body = _ok(client.post("/api/v1/users", headers=admin, json={
        "username": "erp1", "full_name": "SAP PI", "roles": ["erp"],
        "service_account": True}), 201)
    assert body["temporary_password"] is None and body["service_account"] is True
    refused = client.post("/api/v1/users/erp1/password-reset", headers=admin,
                          json={"reason": "no"})
    assert refused.status_code == 409


@pytest.mark.parametrize("roles", [["admin"], ["erp", "qa_approver"], ["production"]])
def test_a_service_account_only_reads_exports_and_takes_the_feed(client, admin, roles,
                                                                  db_snapshot):
    """A machine holding `admin` (or a GMP role) would act with no person named: an
    administrator could even administer their own account through it."""
    before = db_snapshot()
    refused = client.post("/api/v1/users", headers=admin, json={
        "username": "robot", "full_name": "Robot", "roles": roles, "service_account": True})
    assert refused.status_code == 422 and "roles" in refused.get_json()["errors"]
    assert db_snapshot() == before
    _ok(client.post("/api/v1/users", headers=admin, json={
        "username": "robot", "full_name": "Robot", "roles": ["auditor", "erp"],
        "service_account": True}), 201)
    widened = client.put("/api/v1/users/robot/roles", headers=admin,
                         json={"roles": roles, "reason": "needs more"})
    assert widened.status_code == 422 and "roles" in widened.get_json()["errors"]


def test_only_user_managers_administer_users(client, make_user, auth_headers, db_snapshot):
    make_user("bea", "qa_reviewer")
    qa = auth_headers(make_user("quinn.qa", "qa_approver"))
    before = db_snapshot()
    for method, url, body in [
            ("get", "/api/v1/users", None), ("get", "/api/v1/users/bea", None),
            ("post", "/api/v1/users", {"username": "x.y", "full_name": "X", "roles": ["erp"]}),
            ("put", "/api/v1/users/quinn.qa/roles", {"roles": ["admin"], "reason": "r"}),
            ("post", "/api/v1/users/bea/password-reset", {"reason": "r"}),
            ("post", "/api/v1/users/bea/unlock", {"reason": "r"}),
            ("post", "/api/v1/users/bea/deactivate", {"reason": "r"})]:
        response = getattr(client, method)(url, headers=qa, json=body)
        assert response.status_code == 403, url
        assert response.get_json()["type"].endswith("/not-permitted")
    assert db_snapshot() == before


@pytest.mark.parametrize("method, url, body, status, field", [
    ("post", "/api/v1/users", {"username": "Bad Name", "full_name": "B", "roles": ["erp"]},
     422, "username"),
    ("post", "/api/v1/users", {"username": "bee", "full_name": "B", "roles": ["wizard"]},
     422, "roles"),
    ("post", "/api/v1/users", {"username": "bee", "full_name": "B", "roles": []}, 422, "roles"),
    ("post", "/api/v1/users", {"username": "bee", "full_name": "B", "roles": ["erp"],
                               "service_account": "yes"}, 422, "service_account"),
    ("post", "/api/v1/users", {"username": "bea", "full_name": "Bea 2", "roles": ["erp"]},
     409, "username"),
    ("put", "/api/v1/users/bea/roles", {"roles": ["inspector"]}, 422, "reason"),
    ("put", "/api/v1/users/bea/roles", {"roles": ["inspector"], "reason": "  "}, 422, "reason"),
    ("post", "/api/v1/users/bea/deactivate", {}, 422, "reason"),
    ("post", "/api/v1/users/bea/unlock", {"reason": "not locked"}, 409, None),
    ("post", "/api/v1/users/nobody/unlock", {"reason": "x"}, 404, None),
    ("put", "/api/v1/users/ada.admin/roles", {"roles": ["admin", "qa_approver"],
                                              "reason": "I approve too"}, 403, None),
    ("post", "/api/v1/users/ada.admin/password-reset", {"reason": "mine"}, 403, None),
])
def test_bad_administration_is_refused_and_changes_nothing(client, admin, make_user,
                                                           db_snapshot, method, url, body,
                                                           status, field):
    make_user("bea", "qa_reviewer")
    before = db_snapshot()
    response = getattr(client, method)(url, headers=admin, json=body)
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    if field is not None and status == 422:
        assert field in response.get_json()["errors"]
    assert db_snapshot() == before
