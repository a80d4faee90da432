"""The OpenAPI 3.1 document, built from the endpoint declarations (qms.api.spec)."""
from __future__ import annotations

import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from qms import __version__
from qms.api import api
from qms.api.schemas import Problem
from qms.api.spec import OPERATIONS, Operation, endpoint, openapi_path

ERROR_TEXT = {401: "Not authenticated", 403: "Not permitted, segregation of duties, or "
              "wrong signature credentials", 404: "Not found", 409: "Invalid transition or "
              "failed release gate", 422: "Invalid input (errors per field)", 423: "Account locked"}


@lru_cache(maxsize=1)
def build_openapi() -> dict:
    spec = APISpec(title="QMS API", version=__version__, openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "GMP quality management system. Errors are "
                                        "application/problem+json; decimals are strings."})
    spec.components.schema("Problem", schema=Problem)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(openapi_path(api.url_prefix + op.rule), {})[op.method.lower()] = _operation(op)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


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
    codes = set(op.errors) | ({422} if op.body or op.query else set()) | \
        (set() if op.public else {401, 403})
    for code in sorted(codes):
        responses[str(code)] = {"description": ERROR_TEXT.get(code, "Error"),
                                "content": {"application/problem+json": {"schema": "Problem"}}}
    return responses


class OpenApiDocument(Schema):
    openapi = fields.String()
    info = fields.Dict()
    paths = fields.Dict()
    components = fields.Dict()


@endpoint(api, "/openapi.json", "GET", summary="This OpenAPI document", tag="system",
          response=OpenApiDocument)
def openapi_document():
    return build_openapi()
