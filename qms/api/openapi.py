"""The OpenAPI 3.1 document, built from the endpoint declarations (qms.api.spec)."""
from __future__ import annotations

import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from qms import __version__
from qms.api import api
from qms.api.problems import PROBLEM_TYPES, ProblemType, problem_schema, schema_name
from qms.api.spec import FIT_TEXT_PATTERN, OPERATIONS, Operation, endpoint, openapi_path

ERROR_TEXT = {401: "Not authenticated", 403: "Not permitted, segregation of duties, or "
              "wrong signature credentials", 404: "Not found", 409: "Invalid transition, "
              "conflict or failed release gate", 422: "Invalid input (errors per field)",
              423: "Account locked", 429: "Too many attempts",
              503: "The audit signing key is missing (restore it)"}
# string schemas whose values are already constrained more narrowly than the text rule
CONSTRAINED = ("pattern", "format", "enum", "const")


@lru_cache(maxsize=1)
def build_openapi() -> dict:
    spec = APISpec(title="QMS API", version=__version__, openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "GMP quality management system. Errors are "
                                        "application/problem+json; decimals are strings."})
    for problem_type in PROBLEM_TYPES:
        spec.components.schema(schema_name(problem_type), problem_schema(problem_type))
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(openapi_path(api.url_prefix + op.rule), {})[op.method.lower()] = _operation(op)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return with_text_rule(spec.to_dict())


def with_text_rule(node):
    """Give every free-text string schema the input rule (qms.api.spec.UNFIT_TEXT) as its
    ``pattern``, so that it is part of the contract, not only of the prose. In place."""
    if isinstance(node, dict):
        kind = node.get("type")
        is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
        if is_string and not any(key in node for key in CONSTRAINED):
            node["pattern"] = FIT_TEXT_PATTERN
        for value in node.values():
            with_text_rule(value)
    elif isinstance(node, list):
        for value in node:
            with_text_rule(value)
    return node


def _operation(op: Operation) -> dict:
    document: dict = {"summary": op.summary, "tags": [op.tag], "responses": _responses(op),
                      "operationId": f"{op.method.lower()}_{openapi_path(op.rule)}"}
    if op.description:
        document["description"] = op.description
    if op.permission:
        document["x-permission"] = op.permission
    document["security"] = [] if op.public else [{"bearer": []}]
    if op.body is not None:
        document["requestBody"] = {"required": True,
                                   "content": {"application/json": {"schema": op.body}}}
    parameters = _path_parameters(op.rule)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if parameters:
        document["parameters"] = parameters
    return document


def _path_parameters(rule: str) -> list[dict]:
    """Flask converters -> OpenAPI path parameters (<int:id> is an integer)."""
    return [{"in": "path", "name": name, "required": True,
             "schema": {"type": "integer" if converter == "int" else "string"}}
            for converter, name in re.findall(r"<(?:([a-z]+):)?([a-zA-Z_]+)>", rule)]


def _responses(op: Operation) -> dict:
    success: dict = {"description": "No content" if op.status == 204 else "Success"}
    if op.response is not None:
        schema = {"type": "array", "items": op.response} if op.many else op.response
        success["content"] = {op.produces: {"schema": schema}}
    elif op.produces != "application/json":
        success["content"] = {op.produces: {"schema": {"type": "string", "format": "binary"}}}
    responses = {str(op.status): success}
    # a path argument, like a body or a query, is refused by name when it breaks the text rule
    takes_input = op.body or op.query or _path_parameters(op.rule)
    codes = set(op.errors) | ({422} if takes_input else set()) | \
        (set() if op.public else {401, 403})
    for code in sorted(codes):
        responses[str(code)] = problem_response(code)
    return responses


def problem_response(status: int) -> dict:
    """The answer for ``status``: one of the problem types with that status, told apart by
    their ``type`` URI. A 429 says in Retry-After when to try again."""
    types = [t for t in PROBLEM_TYPES if t.status == status]
    if not types:
        raise ValueError(f"no problem type has status {status} (qms.api.problems)")
    response: dict = {"description": ERROR_TEXT.get(status, "Error"),
                      "content": {"application/problem+json": {"schema": _one_of(types)}}}
    if status == 429:
        response["headers"] = {"Retry-After": {
            "description": "seconds to wait, or the HTTP date to wait for (RFC 9110)",
            "required": True, "schema": {"type": "string"}}}
    return response


def _one_of(types: list[ProblemType]) -> dict:
    refs = {t.uri: f"#/components/schemas/{schema_name(t)}" for t in types}
    if len(types) == 1:
        return {"$ref": refs[types[0].uri]}
    return {"oneOf": [{"$ref": ref} for ref in refs.values()],
            "discriminator": {"propertyName": "type", "mapping": refs}}


class OpenApiDocument(Schema):
    openapi = fields.String()
    info = fields.Dict()
    paths = fields.Dict()
    components = fields.Dict()


@endpoint(api, "/openapi.json", "GET", summary="This OpenAPI document", tag="system",
          response=OpenApiDocument)
def openapi_document():
    return build_openapi()
