"""Hooks of the bounded schemathesis run (tests/api/test_schemathesis.py), loaded by its
subprocess through SCHEMATHESIS_HOOKS.

JSON Schema counts a number with a zero fraction (``-80878378.0``) as an integer, so
schemathesis sends such numbers as valid integers; this API refuses them (issue 9, point
13: a number written with a fraction is never taken for a version or a count; docs/api.md).
That is a declared refusal, and the run honours it by writing whole numbers as integers,
which every JSON client can do. Nothing else of the generated requests is changed."""
from __future__ import annotations

from typing import Any

import schemathesis


def whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_integers(item) for item in value]
    return value


@schemathesis.hook
def map_body(context, body):
    return whole_numbers_as_integers(body)


@schemathesis.hook
def map_query(context, query):
    return whole_numbers_as_integers(query)
