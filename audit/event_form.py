"""Is a stored event text exactly the canonical JSON of an event object?

The database-side verifier asks this of every event, so that it calls BROKEN exactly what
the stand-alone verifier (audit/verify_export.py, which re-implements the same published
rules on its own) calls BROKEN: a duplicate key, spacing, an escape, a non-NFC string, a
float, or a field of the wrong shape, even when the hashes and links are consistent.

At a million events the check must cost a few microseconds: the C decoder parses (its
number hooks refuse floats and range-check integers), the C encoder re-encodes, and only
non-ASCII texts pay for the NFC and ASCII-key checks.
"""
from __future__ import annotations

import json
import re
import unicodedata

from audit.canonical import (MAX_DEPTH, MAX_SAFE_INT, CanonicalError, encode_checked_value,
                             nested_too_deep)

EVENT_KEYS = frozenset({"action", "actor", "at", "data", "entity", "prev_hash", "reason",
                        "seq"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
ACTION_TAG = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")


def _no_float(literal: str):
    raise CanonicalError(f"{literal} is not allowed (no floats)")


def _safe_integer(literal: str) -> int:
    number = int(literal)
    if -MAX_SAFE_INT <= number <= MAX_SAFE_INT:
        return number
    raise CanonicalError(f"integer {literal} outside +-(2**53 - 1)")


# the C scanner hands every number literal to these hooks: floats are refused as they are
# parsed and integers range-checked, with no second pass over the text or the value
_DECODER = json.JSONDecoder(parse_float=_no_float, parse_int=_safe_integer,
                            parse_constant=_no_float)
_CONTAINERS = (dict, list)


def event_text_problem(text: str) -> str:
    """Why ``text`` is not the canonical JSON of an event object ("" when it is).

    The same rules, and the same verdicts, as the stand-alone verifier's check of an event
    line (parse_canonical, then event_shape_problem). The decoder refuses floats and
    integers out of range; re-encoding the decoded value must give the text back, which
    fails for a duplicate key, key order, spacing and any escape the canonical form does not
    use (a lone surrogate too); what re-encoding cannot see, NFC and ASCII keys, is checked
    on its own, and only when the text is not plain ASCII.
    """
    if nested_too_deep(text):
        return f"the event text is not canonical JSON (nested deeper than {MAX_DEPTH} levels)"
    try:
        event = _DECODER.decode(text)
    except ValueError as exc:  # JSONDecodeError and CanonicalError too
        return f"the event text is not canonical JSON ({exc})"
    if not text.isascii() and not _nfc_with_ascii_keys(text, event):
        return "the event text is not in canonical form (a string is not NFC or a key is " \
               "not ASCII)"
    if encode_checked_value(event) != text:
        return ("the event text is not in canonical form (duplicate key, key order, "
                "spacing, escapes or NFC differ)")
    return event_shape_problem(event)


def _nfc_with_ascii_keys(text: str, event) -> bool:
    """An NFC text has NFC strings (what lies between them is ASCII punctuation, which
    composes with nothing after it). A text that is not NFC may still have NFC strings: an
    escape such as \n ends in a letter, which a combining mark after it composes with in the
    text but not in the string; so then each string is asked."""
    return ((unicodedata.is_normalized("NFC", text) or _every_string_nfc(event))
            and _ascii_keys(event))


def _ascii_keys(value) -> bool:
    return all("".join(item).isascii() for item in _containers(value) if type(item) is dict)


def _every_string_nfc(value) -> bool:
    return all(unicodedata.is_normalized("NFC", text)
               for item in _containers(value)
               for text in (item if type(item) is list else [*item, *item.values()])
               if type(text) is str)


def _containers(value):
    """Every dict and list in ``value``, itself included."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) in _CONTAINERS:
            yield item
            pending.extend(v for v in (item.values() if type(item) is dict else item)
                           if type(v) in _CONTAINERS)


def event_shape_problem(event) -> str:
    """Why a decoded event is not an event object ("" when it is)."""
    if type(event) is not dict or event.keys() != EVENT_KEYS:
        return "not an event object (keys differ)"
    entity = event["entity"]
    checks = (
        (type(event["seq"]) is int and event["seq"] > 0, "seq is not a positive integer"),
        (type(event["prev_hash"]) is str and _HEX64.fullmatch(event["prev_hash"]),
         "prev_hash is not 64 lowercase hex digits"),
        (type(event["at"]) is str and TIMESTAMP.fullmatch(event["at"]),
         "at is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ"),
        (type(event["actor"]) is str and event["actor"].strip(), "actor is empty"),
        (type(event["action"]) is str and ACTION_TAG.fullmatch(event["action"]),
         "action is not a dotted tag"),
        (entity is None or (type(entity) is dict and entity.keys() == {"id", "type"}
                            and all(type(v) is str for v in entity.values())),
         "entity is neither null nor {id, type}"),
        (event["reason"] is None or type(event["reason"]) is str, "reason is not text"),
        (type(event["data"]) is dict, "data is not an object"),
    )
    return next((why for passed, why in checks if not passed), "")
