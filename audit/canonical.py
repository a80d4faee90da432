"""Canonical JSON encoding and UTC timestamps of the audit trail.

The rules are a public contract (docs/audit-trail-format.md): UTF-8 JSON, object keys sorted,
separators ``,`` and ``:`` without whitespace, non-ASCII characters written as themselves,
every string NFC-normalised, no floats, integers within +-(2**53 - 1), object keys ASCII only.
Inside these limits the output is byte-for-byte RFC 8785 (JCS), so an auditor can check it
with any JCS library.
"""
from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

# I-JSON / RFC 8785 "safe" integers: exactly representable as IEEE 754 doubles
MAX_SAFE_INT = 2**53 - 1
# arrays and objects nest at most this deep, the event object itself counting as one: a
# limit of the format, so that no verifier's verdict depends on how deep its stack is
MAX_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")

# Python's C encoder already writes what JCS writes for the values allowed here: \b \f \n
# \r \t \" \\ as short escapes, other control characters as lowercase \u00xx, everything
# else (DEL, U+2028, non-ASCII) as itself. Keys sort by code point, which equals JCS's
# UTF-16 order because keys are ASCII.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                            allow_nan=False, check_circular=False)


class CanonicalError(ValueError):
    """A value cannot be represented in the canonical audit encoding."""


def canonical_bytes(obj: Any) -> bytes:
    """Encode ``obj`` canonically; raises CanonicalError for anything outside the rules."""
    return _ENCODER.encode(canonical_value(obj)).encode("utf-8")


def canonical_text(obj: Any) -> str:
    """The canonical encoding as ``str`` (what the events table stores)."""
    return _ENCODER.encode(canonical_value(obj))


def encode_checked_value(value: Any) -> str:
    """The canonical text of a value already known to be within the rules (ASCII, no
    floats, integers in range): no copy, no checks. For the verifier's fast path."""
    return _ENCODER.encode(value)


def canonical_value(obj: Any, _path: str = "$", _depth: int = 0) -> Any:
    """Return a validated deep copy: strings NFC, tuples as lists, enums as plain values.

    Raises CanonicalError naming the JSON path of the first offending value.
    """
    if isinstance(obj, (dict, list, tuple)):
        _depth += 1
        if _depth > MAX_DEPTH:
            raise CanonicalError(f"{_path}: nested deeper than {MAX_DEPTH} levels")
    if obj is None or obj is True or obj is False:
        return obj
    if isinstance(obj, str):
        return normalize_text(obj, _path)
    if isinstance(obj, int):
        return _checked_int(obj, _path)
    if isinstance(obj, dict):
        return {_checked_key(key, _path): canonical_value(value, f"{_path}.{key}", _depth)
                for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canonical_value(item, f"{_path}[{index}]", _depth)
                for index, item in enumerate(obj)]
    if isinstance(obj, float):
        raise CanonicalError(f"{_path}: floats are not allowed; write decimals as strings")
    raise CanonicalError(f"{_path}: unsupported type {type(obj).__name__}")


def normalize_text(text: str, path: str = "$") -> str:
    """``text`` as a plain NFC ``str``; lone surrogates (not encodable as UTF-8) raise."""
    # str.__str__ turns a str subclass (e.g. a str-mixin Enum) into its plain value
    text = str.__str__(text)
    if text.isascii():
        return text
    if _SURROGATE.search(text):
        raise CanonicalError(f"{path}: lone surrogate in string")
    if unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _checked_int(number: int, path: str) -> int:
    number = int.__int__(number)  # plain int from bool-free int subclasses (IntEnum)
    if not -MAX_SAFE_INT <= number <= MAX_SAFE_INT:
        raise CanonicalError(f"{path}: integer {number} outside +-(2**53 - 1)")
    return number


def _checked_key(key: Any, path: str) -> str:
    if not isinstance(key, str):
        raise CanonicalError(f"{path}: object key {key!r} is not a string")
    if not key.isascii():
        raise CanonicalError(f"{path}: object key {key!r} is not ASCII")
    return str.__str__(key)


def utc_timestamp(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC.

    Naive datetimes raise CanonicalError: their meaning depends on the server's zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CanonicalError("naive datetime: audit timestamps need a time zone")
    moment = moment.astimezone(UTC)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
            f"{moment.microsecond:06d}Z")


def parse_timestamp(text: str) -> datetime:
    """Parse the canonical timestamp format strictly into an aware UTC datetime."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise CanonicalError(f"not a canonical UTC timestamp: {text!r}")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise CanonicalError(f"not a valid date/time: {text!r}") from exc


# a string literal, or what is left of the text after an unclosed quote: each character is
# read once (an unclosed string must not be tried again from each of its escaped quotes,
# which took time quadratic in the text's length)
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nested_too_deep(text: str) -> bool:
    """Whether arrays and objects in the JSON ``text`` nest deeper than MAX_DEPTH (strings
    skipped); decided before parsing, so that no parser's recursion limit is reached."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING_LITERAL.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False
