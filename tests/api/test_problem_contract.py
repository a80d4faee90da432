"""Every refusal is the answer the OpenAPI document promises (issue 9, point 14): each
problem type is documented with the members it carries (additionalProperties: false kept
honest), a 405 says in Allow which methods the URL takes (RFC 9110), every operation that
takes a path argument documents the 422 refusing it, and the text rule is a pattern of
every free-text string schema, not only prose. tests/contract.py checks the same on every
problem answer of the whole suite."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from schemathesis.core.jsonschema.patterns import enforced_pattern

from qms.api.problems import PROBLEM_TYPES, problem, schema_name
from qms.api.spec import FIT_TEXT_PATTERN, UNFIT_TEXT
from qms.errors import DomainError
from tests.contract import check_problem


@pytest.fixture
def document(client, make_user, auth_headers) -> dict:
    return client.get("/api/v1/openapi.json",
                      headers=auth_headers(make_user("olga", "auditor"))).get_json()


def documented(document: dict, path: str, method: str, status: int) -> Draft202012Validator:
    """A validator of the answer the published document gives for ``status``."""
    schema = document["paths"][path][method]["responses"][str(status)]["content"][
        "application/problem+json"]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


def assert_documented(document: dict, path: str, method: str, response) -> dict:
    body = response.get_json()
    errors = [e.message for e in documented(document, path, method, response.status_code)
              .iter_errors(body)]
    assert errors == [], body
    return body


def test_the_document_with_its_problem_types_is_valid_openapi(document):
    validate(document)
    schemas = document["components"]["schemas"]
    for problem_type in PROBLEM_TYPES:
        schema = schemas[schema_name(problem_type)]
        assert schema["additionalProperties"] is False
        assert schema["properties"]["type"] == {"const": problem_type.uri}
        assert set(problem_type.members) <= set(schema["properties"])


def test_every_domain_error_is_a_documented_problem_type(app):
    catalogue = {(t.code, t.status) for t in PROBLEM_TYPES}
    raised = {(error.code, error.status) for error in _subclasses(DomainError)}
    assert ("release-gates-failed", 409) in raised  # the domains' own errors are seen too
    assert raised - catalogue == set()


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found)) | {cls}


def test_refusals_carry_exactly_the_documented_members(client, author, draft, document,
                                                       make_user, auth_headers):
    """The members the issue found undocumented (open_actions, state, version, ...) are
    declared by their problem type and validate against the published document."""
    path = "/api/v1/documents/{number}/transitions"
    url = f"/api/v1/documents/{draft}/transitions"
    # an approver (the state is told only to whoever may take the action) on a draft
    approver = auth_headers(make_user("quinn.approver", "qa_approver"))
    not_open = client.post(url, headers=approver, json={"action": "approve"})
    assert not_open.status_code == 409
    body = assert_documented(document, path, "post", not_open)
    assert body["type"].endswith("/invalid-transition") and body["open_actions"]
    stale = client.post(url, headers=author, json={"action": "submit", "version": 9})
    assert assert_documented(document, path, "post", stale)["version"] == 1
    invalid = client.post(url, headers=author, json={"action": 7})
    assert "action" in assert_documented(document, path, "post", invalid)["errors"]
    missing = client.post("/api/v1/documents/DOC-1999-00042/transitions", headers=author,
                          json={"action": "submit"})
    assert_documented(document, path, "post", missing)
    anonymous = client.post(url, json={"action": "submit"})
    assert_documented(document, path, "post", anonymous)


def test_a_problem_with_an_undeclared_member_breaks_the_contract(app: Flask):
    """The suite-wide check catches a service that adds a member nobody declared."""
    path = "/api/v1/documents/DOC-2026-00001/transitions"
    with app.test_request_context(path, method="POST"):
        declared = problem(409, "Conflict", "stale", code="conflict", version=2)
        undeclared = problem(409, "Conflict", "stale", code="conflict", seen_by="ann")
        undocumented_status = problem(413, "Request Entity Too Large", "1 MiB at most",
                                      code="request-entity-too-large")
    check_problem(app, "POST", path, declared)
    with pytest.raises(AssertionError, match="seen_by"):
        check_problem(app, "POST", path, undeclared)
    with pytest.raises(AssertionError, match="undocumented 413"):
        check_problem(app, "POST", path, undocumented_status)


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/v1/health", {"GET", "HEAD", "OPTIONS"}),
    ("PUT", "/api/v1/documents/DOC-2026-00001", {"GET", "HEAD", "OPTIONS", "PATCH"}),
    ("GET", "/api/v1/auth/password", {"POST", "OPTIONS"}),
])
def test_a_method_the_url_does_not_take_is_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert response.get_json()["type"].endswith("/method-not-allowed")


def test_every_operation_with_a_path_argument_documents_its_422(document, client, author):
    undocumented = [f"{method.upper()} {path}" for path, operations in document["paths"].items()
                    if "{" in path for method, operation in operations.items()
                    if "422" not in operation["responses"]]
    assert undocumented == []
    refused = client.get("/api/v1/documents/DOC%00", headers=author)
    assert refused.status_code == 422
    assert_documented(document, "/api/v1/documents/{number}", "get", refused)


def test_every_free_text_string_schema_carries_the_text_rule(document):
    loose = list(_loose_strings(document["components"]["schemas"], "components"))
    loose += list(_loose_strings(document["paths"], "paths"))
    assert loose == []
    title = document["components"]["schemas"]["DocumentCreate"]["properties"]["title"]
    assert title["pattern"] == FIT_TEXT_PATTERN


def _loose_strings(node, where: str):
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(node):
            yield where
        for key, value in node.items():
            yield from _loose_strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _loose_strings(value, f"{where}.{index}")


def test_the_published_pattern_is_the_rule_the_server_enforces():
    """Over every code point of the BMP (the only ones the rule names), the pattern in the
    document accepts exactly the characters the server accepts, lone surrogates aside: they
    are no characters (UTF-8 JSON carries them only as escapes), so the pattern cannot name
    them in the validators clients use, and the server refuses them."""
    published = re.compile(FIT_TEXT_PATTERN)
    disagree = [hex(point) for point in range(0x10000) if not 0xD800 <= point <= 0xDFFF
                and bool(published.fullmatch(chr(point))) == bool(UNFIT_TEXT.search(chr(point)))]
    assert disagree == []
    assert all(UNFIT_TEXT.search(chr(point)) for point in range(0xD800, 0xE000))
    assert enforced_pattern(FIT_TEXT_PATTERN) == FIT_TEXT_PATTERN  # schemathesis can use it
    schema = Draft202012Validator({"type": "string", "pattern": FIT_TEXT_PATTERN})
    assert schema.is_valid("Cleaning\tof line 3\n") and not schema.is_valid("SOP\x00")


def test_a_429_is_documented_and_keeps_its_retry_after(app: Flask, document):
    """The rate limit's 429 fits its published type and keeps its Retry-After header."""
    from qms.api import domain_error
    from qms.api.openapi import problem_response
    from qms.errors import TooManyAttempts

    assert problem_response(429)["headers"]["Retry-After"]["required"] is True
    with app.test_request_context("/api/v1/auth/tokens", method="POST"):
        response = domain_error(TooManyAttempts("too many failed attempts", retry_after=30))
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"
    schema = document["components"]["schemas"]["TooManyAttemptsProblem"]
    body = response.get_json()
    assert Draft202012Validator({**schema, "components": document["components"]}).is_valid(body)
