"""Health, OpenAPI, problem+json, the audit endpoints."""
from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openapi_spec_validator import validate

from audit.canonical import canonical_bytes


def test_anonymous_health_says_only_that_the_service_is_up(client):
    """A stranger learns neither the version, nor the database, nor the chain head."""
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_authenticated_health_reports_version_database_and_chain_head(
        client, make_user, auth_headers, backend):
    headers = auth_headers(make_user("olga", "auditor"))
    body = client.get("/api/v1/health", headers=headers).get_json()
    assert body["status"] == "ok" and body["version"]
    assert body["database"] == backend
    assert body["audit_head"]["seq"] >= 1 and len(body["audit_head"]["hash"]) == 64


def test_openapi_documents_every_route_and_is_valid(app, client, make_user, auth_headers):
    headers = auth_headers(make_user("olga", "auditor"))
    document = client.get("/api/v1/openapi.json", headers=headers).get_json()
    validate(document)
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_openapi_gives_every_operation_its_request_and_response_schemas(client, make_user,
                                                                        auth_headers):
    """Clients generate code from the document: a write without a request schema or an
    answer without a response schema would leave them guessing."""
    headers = auth_headers(make_user("olga", "auditor"))
    document = client.get("/api/v1/openapi.json", headers=headers).get_json()
    gaps = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            success = [r for code, r in operation["responses"].items() if code.startswith("2")]
            if not all("content" in r and all("schema" in c for c in r["content"].values())
                       for r in success if r["description"] != "No content"):
                gaps.append(f"{method.upper()} {path}: response schema")
            if method in ("post", "patch", "put") and "requestBody" not in operation \
                    and path not in BODYLESS_WRITES:
                gaps.append(f"{method.upper()} {path}: request schema")
    assert gaps == []


# writes whose request is the URL alone
BODYLESS_WRITES = {"/api/v1/audit/checkpoints"}


def test_unknown_api_paths_and_methods_answer_problem_json(client):
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong_method = client.delete("/api/v1/health")
    assert wrong_method.status_code == 405 and wrong_method.mimetype == "application/problem+json"


def test_audit_events_filters(client, make_user, auth_headers):
    headers = auth_headers(make_user("paula", "auditor"))
    make_user("quentin", "inspector")
    everything = client.get("/api/v1/audit/events", headers=headers).get_json()["events"]
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    by_actor = client.get("/api/v1/audit/events?actor=paula", headers=headers).get_json()["events"]
    assert by_actor and all(e["actor"] == "paula" for e in by_actor)
    by_entity = client.get("/api/v1/audit/events?entity_type=user&entity_id=quentin",
                           headers=headers).get_json()["events"]
    assert [e["action"] for e in by_entity] == ["identity.user.created"]
    by_prefix = client.get("/api/v1/audit/events?action=identity.token", headers=headers).get_json()
    assert {e["action"] for e in by_prefix["events"]} == {"identity.token.created"}
    window = client.get("/api/v1/audit/events?seq_from=2&seq_to=3", headers=headers).get_json()
    assert [e["seq"] for e in window["events"]] == [2, 3]
    bad = client.get("/api/v1/audit/events?seq_from=zero&limit=100000", headers=headers)
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"seq_from", "limit"}


def test_audit_read_needs_permission(client, make_user, auth_headers):
    headers = auth_headers(make_user("ivan", "inspector"))
    refused = client.get("/api/v1/audit/events", headers=headers)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"


def test_checkpoint_on_demand_verifies_with_the_public_key(client, make_user, auth_headers):
    admin = auth_headers(make_user("root.admin", "admin"))
    created = client.post("/api/v1/audit/checkpoints", headers=admin)
    assert created.status_code == 201
    checkpoint = created.get_json()
    key = client.get("/api/v1/audit/public-key", headers=admin).get_json()
    assert key["key_id"] == checkpoint["key_id"]
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key_b64"]))
    assert checkpoint["purpose"] == "routine"
    payload = {k: checkpoint[k] for k in ("at", "hash", "key_id", "purpose", "seq", "site")}
    public.verify(base64.b64decode(checkpoint["signature"]), canonical_bytes(payload))
    report = client.get("/api/v1/audit/verify", headers=admin).get_json()
    assert report["ok"] is True and report["checkpoints_checked"] >= 1
    assert report["verdict"] == "INTACT"
    assert client.get("/api/v1/audit/checkpoints", headers=admin).get_json()[0]["seq"] == checkpoint["seq"]


def test_checkpoint_needs_permission(client, make_user, auth_headers):
    headers = auth_headers(make_user("aud", "auditor"))
    assert client.post("/api/v1/audit/checkpoints", headers=headers).status_code == 403


def test_a_duplicate_that_slips_past_the_checks_is_recognised_as_a_conflict(app):
    """The unique index is the last line against two concurrent creators of one code."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from qms.api import is_unique_violation

    engine = app.extensions["qms"].db.engine
    insert = text("INSERT INTO record_numbers (prefix, year, last_value) VALUES ('DUP', 2026, 1)")
    with engine.connect() as connection:
        connection.execute(insert)
        try:
            connection.execute(insert)
        except IntegrityError as error:
            assert is_unique_violation(error)
        else:
            raise AssertionError("the duplicate was accepted")
        connection.rollback()


def test_an_error_cannot_overwrite_the_members_of_its_problem_answer():
    """A domain error's extra members sit beside type/title/status/detail; one named like
    them would break the answer (a 500 instead of its 409), so it is refused where raised."""
    import pytest

    from qms.errors import Conflict

    with pytest.raises(ValueError, match="reserved"):
        Conflict("lot L-1 is rejected", extra={"status": "rejected"})
    assert Conflict("lot L-1 is rejected", extra={"lot_status": "rejected"}).extra
