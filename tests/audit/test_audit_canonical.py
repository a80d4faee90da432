"""Canonical encoding: byte-identical to an independent RFC 8785 implementation within the
format's limits, and refusing everything outside them."""
from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import verify_export
from audit.canonical import (MAX_DEPTH, MAX_SAFE_INT, CanonicalError, canonical_bytes,
                             canonical_text, nested_too_deep, parse_timestamp, utc_timestamp)
from audit.event_form import event_text_problem

safe_ints = st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT)
nfc_text = st.text().map(lambda text: unicodedata.normalize("NFC", text))
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127))
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | nfc_text,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(ascii_keys, children, max_size=5),
    max_leaves=30)


@settings(deadline=None)  # a busy CI machine must not turn slowness into failures
@given(json_values)
def test_canonical_bytes_equal_rfc8785(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(deadline=None)
@given(json_values)
def test_stand_alone_verifier_encodes_identically(value):
    assert verify_export.canonical_json(value) == canonical_bytes(value)


@settings(deadline=None)
@given(st.dictionaries(ascii_keys, st.text(), max_size=5))
def test_strings_are_nfc_normalised(value):
    normalised = {key: unicodedata.normalize("NFC", text) for key, text in value.items()}
    assert canonical_bytes(value) == rfc8785.dumps(normalised)


def test_escapes_match_jcs_for_every_control_character():
    text = "".join(chr(code) for code in range(0x20)) + '"\\/\x7f\u2028\u2029é€😀'
    assert canonical_bytes({"s": text}) == rfc8785.dumps({"s": text})
    assert canonical_bytes("\b\f\n\r\t\x01\x1f") == b'"\\b\\f\\n\\r\\t\\u0001\\u001f"'


def test_layout_sorted_keys_no_whitespace_utf8():
    value = {"b": [1, True, None], "a": {"z": "Grüße", "y": -MAX_SAFE_INT}}
    assert canonical_bytes(value) == (
        '{"a":{"y":-9007199254740991,"z":"Grüße"},"b":[1,true,null]}'.encode())
    assert canonical_text(("x", 1)) == '["x",1]'


@pytest.mark.parametrize("value", [1.0, 0.5, float("nan"), float("inf"), {"a": [1.5]}])
def test_floats_are_refused(value):
    with pytest.raises(CanonicalError, match="float"):
        canonical_bytes(value)


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30, {"n": [MAX_SAFE_INT + 1]}])
def test_integers_beyond_the_safe_range_are_refused(value):
    with pytest.raises(CanonicalError, match="outside"):
        canonical_bytes(value)


@pytest.mark.parametrize("value", [{"é": 1}, {"a": {"ключ": 1}}])
def test_non_ascii_keys_are_refused(value):
    with pytest.raises(CanonicalError, match="not ASCII"):
        canonical_bytes(value)


@pytest.mark.parametrize("value", [{1: "a"}, {None: 1}, {("a",): 1}])
def test_non_string_keys_are_refused(value):
    with pytest.raises(CanonicalError, match="not a string"):
        canonical_bytes(value)


@pytest.mark.parametrize("value", ["\ud800", {"a": "x\udfffy"}, ["\udc00"]])
def test_lone_surrogates_are_refused(value):
    with pytest.raises(CanonicalError, match="surrogate"):
        canonical_bytes(value)


@pytest.mark.parametrize("value", [Decimal("1.5"), b"bytes", {1, 2}, datetime.now(UTC), object()])
def test_other_types_are_refused(value):
    with pytest.raises(CanonicalError, match="unsupported type"):
        canonical_bytes(value)


def test_error_names_the_json_path():
    with pytest.raises(CanonicalError, match=r"\$\.after\.qty"):
        canonical_bytes({"after": {"qty": 12.3}})


def test_enum_values_encode_as_their_values():
    class State(str, enum.Enum):
        OPEN = "open"

    class Level(enum.IntEnum):
        MAJOR = 2

    assert canonical_bytes({"state": State.OPEN, "level": Level.MAJOR}) == (
        b'{"level":2,"state":"open"}')


def test_utc_timestamp_format():
    moment = datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-03-04T05:06:07.000008Z"
    plus_two = datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(plus_two) == "2026-03-04T05:06:07.000000Z"


def test_naive_datetimes_are_refused():
    with pytest.raises(CanonicalError, match="naive"):
        utc_timestamp(datetime(2026, 1, 1))


@settings(deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
def test_timestamps_round_trip(moment):
    assert parse_timestamp(utc_timestamp(moment)) == moment


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000+00:00",
                                  "2026-13-01T00:00:00.000000Z", " 2026-01-01T00:00:00.000000Z",
                                  "2026-01-01 00:00:00.000000Z"])
def test_parse_timestamp_is_strict(text):
    with pytest.raises(CanonicalError):
        parse_timestamp(text)


def test_the_writer_refuses_data_nested_deeper_than_the_format_allows():
    deep: list = []
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    canonical_text(deep)  # MAX_DEPTH levels
    with pytest.raises(CanonicalError, match="nested deeper than"):
        canonical_text([deep])


# more brackets than the format allows, then a string that never ends, full of escaped
# quotes: the nesting pre-check once tried every escaped quote as a string's start and read
# on to the end each time (minutes for this text; an INSERT of one such row held every
# verification), now it reads each character once
UNCLOSED = "[" * (MAX_DEPTH + 8) + '"' + '\\"' * 100_000


@pytest.mark.parametrize("text, deep", [
    (UNCLOSED, True), ('"' + "[" * (MAX_DEPTH + 1) + '"', False),
    ('"\\\\"' + "[" * (MAX_DEPTH + 1), True), ('"\\"' + "[" * (MAX_DEPTH + 1), False),
    ("[" * MAX_DEPTH + '"]"' + "]" * MAX_DEPTH, False), ("[" * (MAX_DEPTH + 1), True),
])
def test_nesting_is_counted_outside_strings_by_both_verifiers(text, deep):
    assert nested_too_deep(text) is deep
    assert verify_export.nested_too_deep(text) is deep


def test_an_unclosed_string_past_the_depth_limit_is_refused_by_both_verifiers():
    assert "nested deeper than" in event_text_problem(UNCLOSED)
    with pytest.raises(ValueError, match="nested deeper than"):
        verify_export.parse_canonical(UNCLOSED.encode())
