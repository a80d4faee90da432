"""Every integer a request carries is strict (issue 9, point 13): a number with a fraction
or an exponent (1.9, 1.0), a boolean or a string is refused with 422 naming the field, and
nothing changes; before, 1.9 was cut to 1 and applied as the version the client read."""
from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields

from qms.api.spec import OPERATIONS, SafeInteger

NOT_INTEGERS = [1.9, 1.0, 1e0, True, False, "1", "one", [1], {"n": 1}]
NOT_INTEGER_TEXT = ["1.9", "1.0", "1e1", "+1", "true", "", " 1", "0x10", "١"]


def assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"], response.get_json()


@pytest.mark.parametrize("version", NOT_INTEGERS, ids=repr)
def test_an_edit_naming_a_version_that_is_not_an_integer_changes_nothing(
        client, author, draft, db_snapshot, version):
    before = db_snapshot()
    response = client.patch(f"/api/v1/documents/{draft}", headers=author,
                            content_type="application/json",
                            data=json.dumps({"changes": {"summary": "Wet clean."},
                                             "reason": "typo", "version": version}))
    assert_refused(response, "version")
    assert db_snapshot() == before


@pytest.mark.parametrize("version", [1.9, 1.0, True], ids=repr)
def test_a_transition_naming_a_version_that_is_not_an_integer_changes_nothing(
        client, author, draft, db_snapshot, version):
    before = db_snapshot()
    response = client.post(f"/api/v1/documents/{draft}/transitions", headers=author,
                           json={"action": "submit", "version": version})
    assert_refused(response, "version")
    assert db_snapshot() == before


def test_a_whole_version_is_still_applied(client, author, draft):
    response = client.patch(f"/api/v1/documents/{draft}", headers=author,
                            json={"changes": {"summary": "Wet clean."}, "reason": "typo",
                                  "version": 1})
    assert response.status_code == 200 and response.get_json()["version"] == 2


@pytest.mark.parametrize("text", NOT_INTEGER_TEXT)
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_integer_query_arguments_are_decimal_digits(client, author, draft, name, text):
    response = client.get("/api/v1/documents", headers=author, query_string={name: text})
    assert_refused(response, name)


def test_integer_query_arguments_in_digits_are_taken(client, author, draft):
    response = client.get("/api/v1/documents?limit=1&offset=0", headers=author)
    assert response.status_code == 200 and len(response.get_json()) == 1


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_the_shared_integer_field_refuses_anything_but_a_whole_number(value):
    schema = Schema.from_dict({"n": SafeInteger(min=0)})()
    assert "n" in schema.validate({"n": value})
    assert schema.load({"n": 7}) == {"n": 7}


def test_every_integer_a_request_carries_is_the_strict_shared_field(app):
    """decimals, sample_size, lot_size, sample, corrects, version, limit, offset, ... in
    every body and query of every endpoint (all registered by the app), nested included."""
    lenient = [f"{op.method} {op.rule}: {name}"
               for op in OPERATIONS for schema in (op.body, op.query) if schema is not None
               for name, field in _integer_fields(schema())
               if not isinstance(field, SafeInteger)]
    assert lenient == []
    assert {"/inspections/<number>/results", "/erp/events"} <= {op.rule for op in OPERATIONS}


def _integer_fields(schema: Schema, prefix: str = ""):
    for name, field in schema.load_fields.items():
        yield from _integers_in(field, prefix + name)


def _integers_in(field: fields.Field, path: str):
    if isinstance(field, fields.Integer):
        yield path, field
    elif isinstance(field, fields.Nested):
        yield from _integer_fields(field.schema, path + ".")
    elif isinstance(field, fields.List):
        yield from _integers_in(field.inner, path + ".*")
    elif isinstance(field, fields.Dict) and field.value_field is not None:
        yield from _integers_in(field.value_field, path + ".*")
