"""Is a stored event text exactly the canonical JSON of an event object?

The database-side verifier asks this of every event, so that it calls BROKEN exactly what
the stand-alone verifier (audit/verify_export.py, which re-implements the same published
rules on its own) calls BROKEN: a duplicate key, spacing, an escape, a non-NFC string, a
float, or a field of the wrong shape, even when the hashes and links are consistent.

At a million events the check must cost a few microseconds: the C decoder parses, the C
encoder re-encodes, and only texts that could hold something the plain encoder does not
check (non-ASCII, or a run of 16 digits that may be an integer beyond 2**53) take the full
``canonical_text`` path.
"""
from __future__ import annotations

import json
import re
import unicodedata

from audit.canonical import CanonicalError, canonical_text, encode_checked_value

EVENT_KEYS = frozenset({"action", "actor", "at", "data", "entity", "prev_hash", "reason",
                        "seq"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ACTION = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
# 2**53 - 1 has 16 digits: a shorter integer is always within the format's range
_LONG_DIGITS = re.compile(r"\d{16}")


def _no_float(literal: str):
    raise CanonicalError(f"{literal} is not allowed (no floats)")


_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


def event_text_problem(text: str) -> str:
    """Why ``text`` is not the canonical JSON of an event object ("" when it is).

    The same rules, and the same verdicts, as the stand-alone verifier's check of an event
    line (parse_canonical, then event_shape_problem).
    """
    try:
        event = _DECODER.decode(text)
        if _plain_encoding_suffices(text, event):
            form = encode_checked_value(event)
        else:
            form = canonical_text(event)  # raises for what the format forbids
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and CanonicalError too
        return f"the event text is not canonical JSON ({exc})"
    if form != text:
        return ("the event text is not in canonical form (duplicate key, key order, "
                "spacing, escapes or NFC differ)")
    return event_shape_problem(event)


def _plain_encoding_suffices(text: str, event) -> bool:
    """True when re-encoding ``event`` without checks proves canonical form, given that the
    re-encoding must equal ``text``: no integer can be out of range (no 16-digit run), and
    non-ASCII text is NFC with ASCII keys. Escapes need no check: the re-encoding writes
    characters as themselves, so an escaped one (a lone surrogate too) cannot compare
    equal. NFC of the whole text is NFC of each string, since the JSON punctuation between
    them is ASCII, which never combines."""
    if _LONG_DIGITS.search(text):
        return False
    return text.isascii() or (unicodedata.is_normalized("NFC", text) and _ascii_keys(event))


def _ascii_keys(value) -> bool:
    if type(value) is dict:
        return all(key.isascii() and _ascii_keys(item) for key, item in value.items())
    if type(value) is list:
        return all(_ascii_keys(item) for item in value)
    return True


def event_shape_problem(event) -> str:
    """Why a decoded event is not an event object ("" when it is)."""
    if type(event) is not dict or event.keys() != EVENT_KEYS:
        return "not an event object (keys differ)"
    entity = event["entity"]
    checks = (
        (type(event["seq"]) is int and event["seq"] > 0, "seq is not a positive integer"),
        (type(event["prev_hash"]) is str and _HEX64.fullmatch(event["prev_hash"]),
         "prev_hash is not 64 lowercase hex digits"),
        (type(event["at"]) is str and _TIMESTAMP.fullmatch(event["at"]),
         "at is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ"),
        (type(event["actor"]) is str and event["actor"].strip(), "actor is empty"),
        (type(event["action"]) is str and _ACTION.fullmatch(event["action"]),
         "action is not a dotted tag"),
        (entity is None or (type(entity) is dict and entity.keys() == {"id", "type"}
                            and all(type(v) is str for v in entity.values())),
         "entity is neither null nor {id, type}"),
        (event["reason"] is None or type(event["reason"]) is str, "reason is not text"),
        (type(event["data"]) is dict, "data is not an object"),
    )
    return next((why for passed, why in checks if not passed), "")
