"""The fast canonical-form check (audit.fast_form) answers exactly as the reference
(audit.event_form.event_text_problem): on generated events, on tampered ones (duplicate and
reordered keys, whitespace, escapes, big integers, non-canonical numbers, NFC, non-ASCII
keys, wrong shapes) and on random byte edits, one text at a time and for whole chunks.

The fast path may only ever say "canonical": whatever it does not vouch for goes to the
reference. So the properties are (1) whenever the fast path vouches, the reference finds no
problem, and (2) a chunk's answer is the index of the reference's first problem.
"""
from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from hashlib import sha256

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import verify_export
from audit.canonical import MAX_DEPTH, MAX_SAFE_INT, canonical_bytes, utc_timestamp
from audit.fast_form import (FAST_DEPTH, _all_canonical, first_non_canonical,
                             stored_text_problem)

safe_ints = st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT)
nfc_text = st.text().map(lambda text: unicodedata.normalize("NFC", text))
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | nfc_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(ascii_keys, children, max_size=4),
    max_leaves=20)
START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
ACTION = r"[a-z0-9_]{1,8}(\.[a-z0-9_]{1,8}){1,3}"


@st.composite
def events(draw) -> dict:
    """Event objects as audit.trail writes them, with any data, actor and reason."""
    entity = draw(st.none() | st.fixed_dictionaries({"id": nfc_text, "type": nfc_text}))
    return {
        "action": draw(st.from_regex(ACTION, fullmatch=True)),
        "actor": draw(nfc_text.filter(str.strip)),
        "at": utc_timestamp(START + timedelta(microseconds=draw(st.integers(0, 10**12)))),
        "data": draw(st.dictionaries(ascii_keys, json_values, max_size=4)),
        "entity": entity,
        "prev_hash": sha256(draw(st.binary(max_size=8))).hexdigest(),
        "reason": draw(st.none() | nfc_text),
        "seq": draw(st.integers(1, MAX_SAFE_INT)),
    }


def agree(stored: bytes | None) -> None:
    """One text: the fast path vouches only for what the reference accepts, the chunk answer
    is the reference's, and the stand-alone verifier judges the text alike."""
    problem = stored_text_problem(stored)
    if _all_canonical([stored]):
        assert problem == "", stored
    assert first_non_canonical([stored]) == (0 if problem else None), (stored, problem)
    assert bool(problem) == bool(_export_problem(stored)), (stored, problem)


def _export_problem(stored: bytes | None) -> str:
    if stored is None:
        return "missing"
    try:
        event = verify_export.parse_canonical(stored)
    except ValueError as exc:
        return str(exc)
    return verify_export.event_shape_problem(event)


def event_text(**changes) -> bytes:
    event = {"action": "deviation.record.updated", "actor": "alice",
             "at": "2026-05-04T08:00:00.000000Z",
             "data": {"after": {"qty": "12.30", "title": "Grüße"}, "before": {"qty": "1"},
                      "version": 2},
             "entity": {"id": "DEV-2026-00001", "type": "deviation"},
             "prev_hash": "0" * 64, "reason": "§ 5.2 correction", "seq": 3}
    return canonical_bytes(event | changes)


GOOD = event_text()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_written_events_are_canonical_on_both_paths(event):
    stored = canonical_bytes(event)
    assert stored_text_problem(stored) == ""
    assert _all_canonical([stored])  # no detour through the reference for such events
    assert first_non_canonical([stored]) is None


def test_the_encoders_agree_on_every_character_they_may_meet():
    # every control character, the Latin-1 range, line and paragraph separators, the BMP's
    # end and beyond: escaped or written as themselves exactly as the canonical encoder does
    sample = [*range(0x300), 0x2028, 0x2029, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x10ffff]
    text = unicodedata.normalize("NFC", "".join(map(chr, sample)))
    stored = event_text(data={"s": text, "l": [text, {"k\x01\x7f": text}]}, reason=text)
    assert stored_text_problem(stored) == ""
    assert _all_canonical([stored])


def test_the_typical_event_takes_the_fast_path():
    assert _all_canonical([GOOD]) and _all_canonical([GOOD] * 200)


def swap(old: bytes, new: bytes) -> bytes:
    return GOOD.replace(old, new)


@pytest.mark.parametrize("stored", [
    # duplicate and reordered keys, at the top and nested
    swap(b'"actor":"alice"', b'"actor":"alice","actor":"alice"'),
    swap(b'"version":2', b'"version":2,"version":2'),
    swap(b'"data":{"after":{"qty":"12.30","title":"Gr\xc3\xbc\xc3\x9fe"}',
         b'"data":{"after":{"title":"Gr\xc3\xbc\xc3\x9fe","qty":"12.30"}'),
    b'{"actor":"alice",' + GOOD[1:].replace(b',"actor":"alice"', b''),
    # whitespace, inside and around
    swap(b'"data":{', b'"data": {'), GOOD + b"\n", b" " + GOOD, GOOD.replace(b",", b", ", 1),
    b"\xef\xbb\xbf" + GOOD,
    # escapes the canonical form does not use
    swap(b'"qty":"12.30"', b'"qty":"\\u0031\\u0032.30"'), swap(b'"alice"', b'"\\u0061lice"'),
    swap(b'"12.30"', b'"12\\/30"'), swap(b"Gr\xc3\xbc", b"Gr\\u00fc"),
    swap(b"Gr\xc3\xbc", b"Gr\\u00FC"), swap(b'"12.30"', b'"\\ud83d\\ude00"'),
    swap(b'"12.30"', b'"\\ud800"'), swap(b'"12.30"', b'"\\udc00"'),
    swap(b'"12.30"', b'"a\tb"'),
    swap(b'"12.30"', b'"\\u000A"'), swap(b'"12.30"', b'"\\u001F"'),
    # numbers: floats, exponents, signs, leading zeros, out of range
    swap(b'"version":2', b'"version":2.0'), swap(b'"version":2', b'"version":2e0'),
    swap(b'"version":2', b'"version":1E1'), swap(b'"version":2', b'"version":-0'),
    swap(b'"version":2', b'"version":02'), swap(b'"version":2', b'"version":+2'),
    swap(b'"version":2', f'"version":{MAX_SAFE_INT + 1}'.encode()),
    swap(b'"version":2', f'"version":{-MAX_SAFE_INT - 1}'.encode()),
    swap(b'"version":2', b'"version":100000000000000000000'),
    swap(b'"version":2', b'"version":1e+20'), swap(b'"version":2', b'"version":NaN'),
    swap(b'"seq":3', b'"seq":0'), swap(b'"seq":3', b'"seq":-3'),
    swap(b'"seq":3', b'"seq":true'), swap(b'"seq":3', b'"seq":"3"'),
    swap(b'"seq":3', f'"seq":{MAX_SAFE_INT + 1}'.encode()),
    # NFC, non-ASCII keys, bytes that are not UTF-8
    swap(b"Gr\xc3\xbc", b"Gru\xcc\x88"), swap(b'"qty":"12.30"', b'"q\xc3\xbc":"1"'),
    swap(b'"title"', b'"t\xc3\xaftle"'), swap(b"Gr\xc3\xbc", b"Gr\xfc"),
    # a non-ASCII key after a nested "entity" member (data is searched to the last one)
    swap(b'"version":2}', b'"version":2,"x":{"a":1,"entity":1},"\xc3\xbc":1}'),
    swap(b"Gr\xc3\xbc", b"Gr\xed\xa0\x80"), swap(b"Gr\xc3\xbc", b"Gr\xc0\x80"),
    # shapes
    swap(b'"reason":', b'"q":1,"reason":'), swap(b'"actor":"alice"', b'"actor":" "'),
    swap(b'"actor":"alice"', b'"actor":"\xc2\xa0\xe2\x80\x83"'),
    swap(b'"actor":"alice"', b'"actor":""'), swap(b'"actor":"alice"', b'"actor":null'),
    swap(b'"deviation.record.updated"', b'"Deviation.updated"'),
    swap(b'"deviation.record.updated"', b'"deviation"'),
    swap(b'"2026-05-04T08:00:00.000000Z"', b'"2026-05-04T08:00:00Z"'),
    swap(b'"2026-05-04T08:00:00.000000Z"', b'"2026-05-04 08:00:00.000000Z"'),
    swap(b'"prev_hash":"' + b"0" * 64, b'"prev_hash":"' + b"A" * 64),
    swap(b'"prev_hash":"' + b"0" * 64, b'"prev_hash":"' + b"0" * 63),
    swap(b'"prev_hash":"' + b"0" * 64, b'"prev_hash":"' + b"0" * 65),
    swap(b'"type":"deviation"}', b'"type":"deviation","x":"y"}'),
    swap(b'"type":"deviation"', b'"type":7'),
    swap(b'"reason":"\xc2\xa7 5.2 correction"', b'"reason":5'),
    event_text(data=[1]), event_text(data="x"), event_text(entity={"id": "x"}),
    # digits that are not 0-9, nesting deeper than the format allows
    event_text(at="2026-05-04T08:00:00.\u0660\u0660\u0660\u0661\u0662\u0663Z"),
    swap(b'"version":2', b'"version":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)),
    swap(b'"version":2', b'"version":' + b"[" * 5000 + b"]" * 5000),
    # not JSON, not an object, not a text
    b"", b"{}", b"[]", b"null", GOOD[:-1], GOOD + b"{}", GOOD.replace(b"{", b"[", 1), None,
])
def test_tampered_texts_get_the_reference_verdict(stored):
    agree(stored)
    assert stored_text_problem(stored) != ""


@pytest.mark.parametrize("stored", [
    # canonical, but beyond what the fast path decides: the reference says so
    event_text(data={"a": json.loads("[" * (FAST_DEPTH + 2) + "]" * (FAST_DEPTH + 2))}),
    # an escape ends in a letter, which the combining mark after it composes with in the
    # text, not in the string: the string is NFC
    event_text(data={"note": "line one\n\u0303 line two", "s": "\x1e\u0301"}),
    # nested as deep as the format allows (the event is one level, data two)
    swap(b'"version":2', b'"version":' + b"[" * (MAX_DEPTH - 2) + b"]" * (MAX_DEPTH - 2)),
    event_text(actor="\u00e9"), event_text(reason="\u00e9"), event_text(actor="\u4e2d"),
    event_text(data={"s": "\u2028\u2029\x7f\x00\x1f\"\\/"}),
    event_text(entity=None, reason=None),
    event_text(data={"k": MAX_SAFE_INT, "m": -MAX_SAFE_INT, "t": True, "f": False, "n": None}),
    event_text(data={"s": "\ud55c\uad6d\uc5b4 \U0001f600"}),
    # members' names inside strings are not members
    event_text(data={"s": '\u00fc","entity":{"\u00fc":1}'}, reason='",\u00fc":"data":"'),
])
def test_canonical_texts_beyond_the_fast_path_are_accepted(stored):
    agree(stored)
    assert stored_text_problem(stored) == ""


EDIT_BYTES = b' ,:{}[]"\\.0123456789eE-+tfnu\x00\n\x7f\xc3\xa9\xff'


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_random_byte_edits_get_the_reference_verdict(event, data):
    stored = bytearray(canonical_bytes(event))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(stored)))
        edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(EDIT_BYTES))
        if edit == "insert":
            stored[position:position] = bytes([byte])
        elif position < len(stored):
            stored[position:position + 1] = b"" if edit == "delete" else bytes([byte])
    agree(bytes(stored))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=30), st.data())
def test_a_chunk_answers_the_first_text_the_reference_refuses(chunk_events, data):
    texts = [canonical_bytes(event) for event in chunk_events]
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(texts) - 1))
        good = canonical_bytes(chunk_events[index])
        texts[index] = data.draw(st.sampled_from([
            good.replace(b",", b", ", 1), good + b" ", b"{}", None,
            good.replace(b'"seq":', b'"seq":1', 1),  # still canonical
            good.replace(b'"data":{', b'"data":{"x":1.5,', 1)]))
    problems = [stored_text_problem(stored) for stored in texts]
    expected = next((index for index, problem in enumerate(problems) if problem), None)
    assert first_non_canonical(texts) == expected
