"""The API's published contract, checked on every answer the test suite provokes: a test
client that validates each problem+json answer of /api/v1 against the OpenAPI document
(the status must be documented for the operation, the body must match the schema of its
problem type, ``additionalProperties: false`` included). Installed on every test app by
tests/conftest.py, so a refusal that breaks the contract fails the test that provoked it."""
from __future__ import annotations

from functools import lru_cache

from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from qms.api.openapi import build_openapi
from qms.api.problems import PROBLEMS_BY_CODE, PROBLEM_BASE, schema_name
from qms.api.spec import openapi_path

API_PREFIX = "/api/v1"


class ContractClient(FlaskClient):
    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.path.startswith(API_PREFIX + "/") and response.status_code >= 400 \
                and response.status_code < 500:
            check_problem(self.application, request.method, request.path, response)
        return response


def check_problem(app: Flask, method: str, path: str, response) -> None:
    """AssertionError unless ``response`` is a problem+json answer the OpenAPI document
    declares for this operation and status."""
    status = response.status_code
    assert response.mimetype == "application/problem+json", (method, path, status)
    body = response.get_json()
    rule = matching_rule(app, method, path)
    if rule is None:  # an unknown URL, a method the URL does not take, HEAD or OPTIONS
        schema = validator(("type", str(body.get("type"))))
    else:
        schema = validator(("operation", method.lower(), openapi_path(rule), str(status)))
    errors = sorted(schema.iter_errors(body), key=str)
    assert not errors, f"{method} {path} answered {status} outside its documented " \
                       f"problem schema: {errors[0].message} in {body}"


def matching_rule(app: Flask, method: str, path: str) -> str | None:
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    except HTTPException:
        return None
    return None if method in ("HEAD", "OPTIONS") else rule.rule


@lru_cache(maxsize=None)
def validator(key: tuple[str, ...]) -> Draft202012Validator:
    """The validator of one documented answer: ("operation", method, path, status), or
    ("type", uri) for answers that belong to no operation."""
    document = build_openapi()
    if key[0] == "type":
        code = key[1].removeprefix(PROBLEM_BASE)
        assert code in PROBLEMS_BY_CODE, f"undocumented problem type {key[1]!r}"
        schema = {"$ref": f"#/components/schemas/{schema_name(PROBLEMS_BY_CODE[code])}"}
    else:
        _, method, path, status = key
        response = document["paths"][path][method]["responses"].get(status)
        assert response is not None, f"{method.upper()} {path} answered an undocumented {status}"
        schema = response["content"]["application/problem+json"]["schema"]
    # the document's components travel with the schema, so its $refs resolve in place
    return Draft202012Validator({**schema, "components": document["components"]})
