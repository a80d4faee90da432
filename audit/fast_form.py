"""The fast path of the canonical form check: whole chunks of stored event texts at C speed.

``first_non_canonical`` answers for a chunk what ``event_text_problem`` answers for one text,
the index of the first text that is not the canonical JSON of an event object, only several
times faster: msgspec decodes each text into a typed event (the types refuse floats, integers
out of range, unknown or missing members and wrong field types), its encoder writes the event
back (keys sorted, no whitespace, the escapes JCS uses) and the bytes must come back unchanged;
the text fields and, for non-ASCII texts, NFC and ASCII keys are checked over the whole chunk
(in time linear in its length).

The fast path only ever says "canonical". Whatever it cannot vouch for, a float, an escape, a
nesting deeper than it decodes, goes to the reference
(``event_text_problem``), which gives the verdict: so the answers are the reference's, and
tests/audit/test_audit_event_form_fast.py checks that on tampered and generated events.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from itertools import filterfalse
from operator import attrgetter, eq
from typing import Annotated, Optional, Union

import msgspec

from audit.canonical import MAX_SAFE_INT
from audit.event_form import ACTION_TAG, TIMESTAMP, event_text_problem

# data nested deeper than this takes the reference path (the application nests 3 levels);
# building the decoder doubles in time with each level (8: 3 ms, 12: 60 ms at import)
FAST_DEPTH = 8
# texts decoded at a time: few enough that the decoded events stay in the CPU cache
_BATCH = 64

_SafeInt = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]


def _value_type(depth: int):
    """null, booleans, safe integers, strings, and arrays and objects of them, ``depth``
    levels deep; no floats."""
    value = Union[None, bool, _SafeInt, str]
    for _ in range(depth):
        value = Union[None, bool, _SafeInt, str, list[value], dict[str, value]]
    return value


class _Entity(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    type: str


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    # in key order: the encoder writes a struct's fields as declared
    action: str
    actor: str
    at: str
    data: dict[str, _value_type(FAST_DEPTH - 1)]
    entity: Optional[_Entity]
    prev_hash: str
    reason: Optional[str]
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]


_decode = msgspec.json.Decoder(_Event).decode
_encode = msgspec.json.Encoder(order="sorted").encode
_at, _action, _prev_hash, _actor = (attrgetter(name)
                                    for name in ("at", "action", "prev_hash", "actor"))
_HEX_DIGITS = b"0123456789abcdef"
# from a non-ASCII byte, which in canonical JSON is inside a string (JSON's syntax is
# ASCII), to the end of that string, with the ":" that follows a key. Matches do not overlap,
# so each string is scanned once however many non-ASCII characters it holds (linear time).
# UTF-8: a multi-byte character's bytes are all >= 0x80, never a quote or a backslash.
_NON_ASCII_STRING = re.compile(rb'[\x80-\xff][^"\\]*(?:\\.[^"\\]*)*"(:?)')
# where the members of an event's data begin and end: the first ',"data":' and the last
# ',"entity":' in a text that re-encodes unchanged. A quote inside a string is escaped, so
# a comma followed by a quote is never inside one: these are the top-level members.
_DATA_MEMBER, _ENTITY_MEMBER = b',"data":', b',"entity":'


def first_non_canonical(texts: Sequence[bytes | None]) -> int | None:
    """Index of the first stored text (UTF-8 bytes; None for SQL NULL) that is not the
    canonical JSON of an event object, as ``event_text_problem`` judges it; None when all are.
    """
    if _all_canonical(texts):
        return None
    return next((index for index, stored in enumerate(texts)
                 if not _all_canonical((stored,)) and stored_text_problem(stored)), None)


def stored_text_problem(stored: bytes | None) -> str:
    """The reference verdict on one stored text (the reason, or "" when canonical)."""
    if not isinstance(stored, bytes):
        return "the event text is missing"
    try:
        return event_text_problem(stored.decode("utf-8"))
    except UnicodeDecodeError:
        return "the event text is not UTF-8"


def _all_canonical(texts: Sequence[bytes | None]) -> bool:
    """True only if every text is surely canonical; False says nothing about any one text."""
    try:
        for start in range(0, len(texts), _BATCH):
            batch = texts[start:start + _BATCH]
            events = list(map(_decode, batch))
            if not (all(map(eq, map(_encode, events), batch)) and _fields_valid(events)):
                return False
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
        return False  # not JSON, not an event, beyond the fast path, or not bytes
    # each text is now the encoding of a decoded event: valid UTF-8 from "{" to "}", so the
    # non-ASCII ones can be checked joined: nothing composes or reorders across "}{", and a
    # string ends within its text
    wide = list(filterfalse(bytes.isascii, texts))
    # NFC of the joined texts vouches for every string; where it fails, a string may still be
    # NFC (an escape such as \n ends in a letter, which a combining mark after it joins), so
    # the reference, which looks at each string, decides
    return _nfc(b"".join(wide).decode("utf-8")) and _ascii_keys(wide)


def _ascii_keys(wide_texts: list[bytes]) -> bool:
    """No key with a non-ASCII character. The event's and the entity's keys are the
    struct's; only data's members can have others, so only data is searched."""
    data = b"".join(filterfalse(bytes.isascii, (
        text[text.find(_DATA_MEMBER):text.rfind(_ENTITY_MEMBER)] for text in wide_texts)))
    return b":" not in _NON_ASCII_STRING.findall(data)


def _nfc(text: str) -> bool:
    """unicodedata.is_normalized("NFC", text), at once for Latin-1 text (the most common):
    no Latin-1 character changes under NFC, and none combines (the first combining mark
    is U+0300)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return unicodedata.is_normalized("NFC", text)
    return True


def _fields_valid(events: list[_Event]) -> bool:
    """The reference's checks of the text fields (event_shape_problem), a batch at a time."""
    hashes = "".join(map(_prev_hash, events))
    return (all(map(TIMESTAMP.fullmatch, map(_at, events)))
            and all(map(ACTION_TAG.fullmatch, map(_action, events)))
            and all(map(str.strip, map(_actor, events)))
            # [0-9a-f]{64} each: 64 characters each, all of them hex digits
            and set(map(len, map(_prev_hash, events))) == {64} and hashes.isascii()
            and not hashes.encode("ascii").translate(None, _HEX_DIGITS))
