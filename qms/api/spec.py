"""Declaring an API endpoint registers its route, its guard (authentication, password
state, permission) and its OpenAPI operation in one place, so the document cannot miss an
endpoint and no endpoint can forget its guard."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, g, request
from marshmallow import Schema, ValidationError

from qms.context import state
from qms.errors import AuthenticationFailed, InvalidInput, NotPermitted


@dataclass(frozen=True)
class Operation:
    rule: str
    method: str
    summary: str
    tag: str
    permission: str | None
    public: bool
    body: type[Schema] | None
    query: type[Schema] | None
    response: type[Schema] | None
    status: int
    many: bool
    description: str = ""
    produces: str = "application/json"
    errors: tuple[int, ...] = field(default=())


OPERATIONS: list[Operation] = []


def endpoint(bp: Blueprint, rule: str, method: str, *, summary: str, tag: str,
             permission: str | None = None, public: bool = False, body=None, query=None,
             response=None, status: int = 200, many: bool = False,
             produces: str = "application/json", errors: tuple[int, ...] = ()) -> Callable:
    """Register ``view`` under ``rule``. The view receives ``body=`` / ``query=`` (loaded
    and validated) when schemas are given. Invalid input -> 422 naming the fields."""
    def decorator(view: Callable) -> Callable:
        op = Operation(rule, method.upper(), summary, tag, permission, public, body, query,
                       response, status, many, (view.__doc__ or "").strip(), produces, errors)
        OPERATIONS.append(op)

        @functools.wraps(view)
        def guarded(**kwargs: Any):
            if not public:
                require_permission(permission)
            if body is not None:
                kwargs["body"] = load(body(), _json_body())
            if query is not None:
                kwargs["query"] = load(query(), request.args.to_dict())
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=f"{view.__name__}_{method.lower()}",
                        view_func=guarded, methods=[method.upper()])
        return view
    return decorator


def require_permission(permission: str | None) -> None:
    user = g.get("api_user")
    if user is None:
        raise AuthenticationFailed("a bearer token is required (POST /api/v1/auth/tokens)")
    if permission and not state().security.roles.allows(user.roles, permission):
        raise NotPermitted(f"permission {permission!r} is required")


def load(schema: Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise InvalidInput("the request has invalid fields",
                           errors=_field_errors(error.normalized_messages())) from None


def _field_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            flat.update(_field_errors(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _json_body() -> Any:
    if not request.is_json:
        raise InvalidInput("the body must be JSON (Content-Type: application/json)",
                           field="_body")
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("the body is not valid JSON", field="_body")
    return data


def openapi_path(rule: str) -> str:
    """Flask's /lots/<number> -> OpenAPI's /lots/{number}."""
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", rule)
