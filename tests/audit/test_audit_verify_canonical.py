"""The database-side verifier checks canonical form and event shape as the stand-alone
verifier does: a consistently chained event whose text is not canonical is BROKEN there."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from audit.verify import verify_chain
from audit_test_support import append_events, rewrite_event_text


@pytest.fixture
def chain(audit_db):
    append_events(audit_db, 6)
    return audit_db


def stored_text(database, seq: int) -> str:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT canonical FROM audit_events WHERE seq = :s"),
                                  {"s": seq}).scalar_one()


def first_bad(database) -> tuple[int | None, str | None]:
    with database.engine.connect() as connection:
        result = verify_chain(connection, public_keys={})
    return result.first_bad_seq, result.problem


@pytest.mark.parametrize("forge, words", [
    # a duplicate key the JSON parsers read alike: hashes, links and columns all agree
    (lambda t: t.replace('"actor":"alice"', '"actor":"alice","actor":"alice"'),
     "canonical form"),
    (lambda t: t.replace('"data":{', '"data":{"after":{},', 1), "canonical form"),
    (lambda t: t.replace('"data":{', '"data": {', 1), "canonical form"),
    (lambda t: t.replace('"qty":"12.30"', '"qty":"\\u0031\\u0032.30"'), "canonical form"),
    (lambda t: t.replace('"qty":"12.30"', '"qty":12.3'), "no floats"),
    (lambda t: t.replace('"qty":"12.30"', '"qty":9007199254740993'), "2**53"),
    (lambda t: t.replace('"qty":"12.30"', '"qty":"e\\u0301"'), "canonical form"),
    (lambda t: t.replace('"data":{', '"data":{"\\u00e9":1,', 1), "canonical form"),
    (lambda t: t.replace('"reason":', '"q":1,"reason":', 1), "keys differ"),
    (lambda t: t.replace('"actor":"alice"', '"actor":" "'), "actor is empty"),
])
def test_a_consistently_chained_non_canonical_event_is_broken(chain, forge, words):
    original = stored_text(chain, 3)
    forged = forge(original)
    assert forged != original
    rewrite_event_text(chain.engine, 3, forged)
    seq, problem = first_bad(chain)
    assert seq == 3, problem
    assert words in problem


def test_a_remembered_form_is_trusted_only_while_the_chain_keeps_its_hash(chain):
    with chain.engine.connect() as connection:
        first = verify_chain(connection, public_keys={})
    assert first.form_checked[0] == 6 and not first.problems
    forged = stored_text(chain, 3).replace('"data":{', '"data": {', 1)
    rewrite_event_text(chain.engine, 3, forged)  # every hash from seq 3 on changes
    with chain.engine.connect() as connection:
        again = verify_chain(connection, public_keys={}, form_known=first.form_checked)
    assert again.first_bad_seq == 3 and "canonical form" in again.problem
