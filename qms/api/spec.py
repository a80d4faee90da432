"""Declaring an API endpoint registers its route, its guard (authentication, password
state, permission) and its OpenAPI operation in one place, so the document cannot miss an
endpoint and no endpoint can forget its guard. The same wrapper refuses, for every endpoint,
input that the database or the audit trail cannot hold (refuse_unfit_input), and is the
request's one commit point (qms.context.request_transaction): views never commit."""
from __future__ import annotations

import functools
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Callable

from flask import Blueprint, g, request
from marshmallow import Schema, ValidationError, fields, validate

from audit.canonical import MAX_SAFE_INT
from qms.context import request_transaction, state
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

# C0 controls except tab, line feed and carriage return, and lone surrogates: PostgreSQL text
# cannot hold NUL, UTF-8 (the database, the audit trail's canonical JSON) cannot hold a lone
# surrogate, XML (the B2MML messages to the ERP) cannot hold U+FFFE and U+FFFF, and the other
# controls have no business in a GMP record
UNFIT_CHARACTERS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff"
SURROGATES = r"\ud800-\udfff"
UNFIT_TEXT = re.compile(f"[{UNFIT_CHARACTERS}{SURROGATES}]")
# the same rule as a JSON Schema pattern (ECMA-262, ASCII escapes) for every string the
# OpenAPI document describes, so that clients and generators know it without the prose.
# Lone surrogates are not characters: UTF-8 JSON cannot carry them except as \ud800
# escapes, and validators that match Unicode scalar values (Rust's regex, under
# schemathesis' jsonschema-rs) cannot name them, so a pattern with them would be dropped;
# the server refuses them all the same (docs/api.md)
FIT_TEXT_PATTERN = f"^[^{UNFIT_CHARACTERS}]*$"
# a body full of bad values must not buy an answer many times its size
MAX_REPORTED_PROBLEMS = 20
# an integer query argument: decimal digits only (no "1.0", "1e3", "+1" or "true"); long
# enough to reach the range check, short enough for int() (Python refuses > 4300 digits)
INTEGER_TEXT = re.compile(r"-?[0-9]{1,100}")


class SafeInteger(fields.Integer):
    """The one integer field of every request: a whole JSON number within +-(2**53 - 1) (or
    narrower ``min``/``max``), exact in every JSON client and in the audit trail, and far
    inside the database's 64-bit columns. Strict: a number with a fraction or an exponent
    (``1.9``, and ``1.0`` too), a boolean or a string is refused, never cut or converted, so
    a version the client did not read is never taken for one it did. Query arguments are
    text; the endpoint hands this field those written in decimal digits as numbers
    (query_arguments)."""

    def __init__(self, *, min: int = -MAX_SAFE_INT, max: int = MAX_SAFE_INT,
                 **options: Any):
        super().__init__(strict=True, validate=validate.Range(min=min, max=max), **options)


class DecimalString(fields.Field):
    """A quantity or measured value as a JSON string of a plain decimal (``"12.30"``):
    exact, and the same bytes in the audit trail. A JSON number is refused, because a float
    has already lost the digits the client meant. Loads a ``Decimal`` with its given places."""

    PATTERN = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,9})?$")

    def __init__(self, *, positive: bool = False, non_negative: bool = False,
                 max_places: int = 9, **options: Any):
        self.positive, self.non_negative, self.max_places = positive, non_negative, max_places
        metadata = {"type": "string", "pattern": self.PATTERN.pattern,
                    "example": "12.30", **options.pop("metadata", {})}
        super().__init__(metadata=metadata, **options)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> Decimal:
        if not isinstance(value, str):
            raise ValidationError("send decimal values as strings, e.g. \"12.30\" (a JSON "
                                  "number may already have lost digits)")
        if not self.PATTERN.match(value):
            raise ValidationError("not a plain decimal number such as \"12.30\"")
        number = Decimal(value)
        if -number.as_tuple().exponent > self.max_places:
            raise ValidationError(f"at most {self.max_places} decimal places")
        if self.positive and number <= 0:
            raise ValidationError("must be greater than zero")
        if self.non_negative and number < 0:
            raise ValidationError("must not be negative")
        return number

    def _serialize(self, value: Any, attr, obj, **kwargs) -> str | None:
        return None if value is None else format(Decimal(value), "f")


def endpoint(bp: Blueprint, rule: str, method: str, *, summary: str, tag: str,
             permission: str | None = None, public: bool = False, body=None, query=None,
             response=None, status: int = 200, many: bool = False,
             produces: str = "application/json", errors: tuple[int, ...] = ()) -> Callable:
    """Register ``view`` under ``rule``. The view receives ``body=`` / ``query=`` (loaded
    and validated) when schemas are given. Invalid input -> 422 naming the fields.

    Whether the endpoint writes follows from ``method``, not from a flag that could be
    forgotten or misread: a POST, PUT, PATCH or DELETE commits once the view has returned
    (a refusal whose writes are kept is committed before its error answer, anything else
    that goes wrong rolls back); a GET never commits."""
    def decorator(view: Callable) -> Callable:
        op = Operation(rule, method.upper(), summary, tag, permission, public, body, query,
                       response, status, many, (view.__doc__ or "").strip(), produces, errors)
        OPERATIONS.append(op)

        @request_transaction
        @functools.wraps(view)
        def guarded(**kwargs: Any):
            if not public:
                require_permission(permission)
            data = _json_body() if body is not None else None
            refuse_unfit_input(data)
            if body is not None:
                kwargs["body"] = load(body(), data)
            if query is not None:
                schema = query()
                kwargs["query"] = load(schema, query_arguments(schema))
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=_view_endpoint(view.__name__, method),
                        view_func=guarded, methods=[method.upper()])
        return view
    return decorator


def _view_endpoint(view_name: str, method: str) -> str:
    return f"{view_name}_{method.lower()}"


def endpoint_name(bp: Blueprint, view_name: str, method: str) -> str:
    """The Flask endpoint (``request.endpoint``) of a view that ``endpoint`` registered."""
    return f"{bp.name}.{_view_endpoint(view_name, method)}"


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


def query_arguments(schema: Schema) -> dict[str, Any]:
    """The query string as ``schema``'s input. Arguments are text: one for an integer field
    written in decimal digits becomes that number, anything else stays the text it is, for
    the strict field to refuse by name."""
    arguments: dict[str, Any] = request.args.to_dict()
    for name, field_ in schema.load_fields.items():
        key = field_.data_key or name
        text = arguments.get(key)
        if isinstance(field_, fields.Integer) and text and INTEGER_TEXT.fullmatch(text):
            arguments[key] = int(text)
    return arguments


def refuse_unfit_input(body: Any) -> None:
    """Raise InvalidInput naming (by dotted path) every path argument, query argument and
    body value that no schema should see, before any schema or service does. Checked here
    once, so that no endpoint can forget it and nothing is written or audited."""
    found = chain.from_iterable(unfit_values(source) for source in
                                (request.view_args or {}, _query_values(), body))
    problems: dict[str, list[str]] = {}
    for path, message in islice(found, MAX_REPORTED_PROBLEMS):
        problems.setdefault(path, []).append(message)
    if problems:
        raise InvalidInput("the request has invalid fields", errors=problems)


def _query_values() -> dict[str, Any]:
    # a repeated argument is checked as a list, so each copy is named (name.0, name.1)
    return {name: values[0] if len(values) == 1 else values
            for name, values in request.args.lists()}


def unfit_values(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, problem) for each string with a character from UNFIT_TEXT (in values
    and in field names) and each number that is not finite or beyond +-(2**53 - 1).
    Iterative: the JSON parser allows nesting deeper than Python's recursion limit."""
    pending = deque([(path, value)])
    while pending:
        path, value = pending.popleft()
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    yield _join(path, _escaped(key)), f"the field name {problem}"
                else:
                    pending.append((_join(path, key), item))
        elif isinstance(value, list):
            pending.extend((_join(path, str(index)), item) for index, item in enumerate(value))
        else:
            problem = scalar_problem(value)
            if problem:
                yield path or "_body", problem


def text_problem(text: str) -> str | None:
    match = UNFIT_TEXT.search(text)
    if match is None:
        return None
    return f"must not contain U+{ord(match[0]):04X} ({_kind_of_unfit(match[0])})"


def _kind_of_unfit(character: str) -> str:
    if character in "\ufffe\uffff":
        return "a noncharacter"
    if "\ud800" <= character <= "\udfff":
        return "an unpaired surrogate"
    return "a control character"


def scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"  # Python's parser takes NaN, Infinity, 1e400 (inf)
    if abs(value) > MAX_SAFE_INT:
        return f"must be between {-MAX_SAFE_INT} and {MAX_SAFE_INT}"
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _escaped(name: str) -> str:
    # a field name that cannot be stored is reported escaped, so the answer stays valid text
    return name.encode("unicode_escape").decode("ascii")


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
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser can go; not a server fault
        raise InvalidInput("the body is nested too deeply", field="_body") from None
    if data is None:
        raise InvalidInput("the body is not valid JSON", field="_body")
    return data


def openapi_path(rule: str) -> str:
    """Flask's /lots/<number> -> OpenAPI's /lots/{number}."""
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", rule)
