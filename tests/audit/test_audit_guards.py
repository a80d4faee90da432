"""The database refuses to change or remove audit rows."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit import trail
from audit.checkpoints import write_checkpoint
from audit.guards import drop_guards, install_guards
from audit_test_support import SITE, append_events

REFUSED_ON_EVENTS = [
    "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
    "UPDATE audit_events SET seq = 99 WHERE seq = 3",
    "DELETE FROM audit_events WHERE seq = 2",
    "DELETE FROM audit_events",
]
REFUSED_ON_CHECKPOINTS_AND_HEAD = [
    "UPDATE audit_checkpoints SET hash = 'x'",
    "DELETE FROM audit_checkpoints",
    "DELETE FROM audit_head",
    "UPDATE audit_head SET seq = 1",
    "UPDATE audit_head SET seq = seq + 1",  # advancing without an event to point at
]


@pytest.fixture
def chain(audit_db, signing_key, checkpoint_file):
    append_events(audit_db, 3)
    with audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    return audit_db


def refused(engine, statement: str) -> str:
    with pytest.raises(DBAPIError) as caught:
        with engine.begin() as connection:
            connection.execute(text(statement))
    return str(caught.value)


@pytest.mark.parametrize("statement", REFUSED_ON_EVENTS + REFUSED_ON_CHECKPOINTS_AND_HEAD)
def test_updates_and_deletes_are_refused(chain, statement):
    message = refused(chain.engine, statement)
    assert "append-only" in message or "audit_head" in message
    with chain.reading() as session:
        assert trail.head(session).seq == 4


def test_sqlite_insert_or_replace_is_refused(chain):
    if chain.engine.dialect.name != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite syntax")
    with chain.reading() as session:
        [event] = trail.query_events(session, seq_from=2, limit=1)
    same_seq = ("INSERT OR REPLACE INTO audit_events (seq, at, actor, action, prev_hash, hash, "
                f"canonical) VALUES (2, '{event.at}', 'mallory', 'x.y.z', '{event.prev_hash}', "
                f"'{'f' * 64}', '{{}}')")
    # the hash of event 2 as the head's next event: only the duplicate hash is wrong
    with chain.reading() as session:
        top = trail.head(session)
    same_hash = (same_seq.replace("VALUES (2,", f"VALUES ({top.seq + 1},")
                 .replace(event.prev_hash, top.hash).replace("f" * 64, event.hash))
    head_row = "INSERT OR REPLACE INTO audit_head VALUES (1, 0, 'x')"
    for statement, message in ((same_seq, "must extend the chain head"),
                               (same_hash, "seq or hash exists"),
                               (head_row, "exactly one row")):
        assert message in refused(chain.engine, statement)
    with chain.reading() as session:
        assert trail.query_events(session, seq_from=2, limit=1) == [event]


def test_sqlite_replace_is_refused_even_without_recursive_triggers(chain):
    if chain.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    # a connection that skipped qms.db's pragmas: the REPLACE delete fires no delete trigger
    raw = sqlite3.connect(chain.engine.url.database)
    try:
        assert raw.execute("PRAGMA recursive_triggers").fetchone() == (0,)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            # the head's next event, but with event 1's hash: REPLACE would delete event 1
            raw.execute("REPLACE INTO audit_events SELECT 5, at, actor, action, entity_type, "
                        "entity_id, reason, (SELECT hash FROM audit_head), hash, canonical "
                        "FROM audit_events WHERE seq = 1")
        assert raw.execute("SELECT count(*) FROM audit_events").fetchone() == (4,)
    finally:
        raw.close()


@pytest.mark.parametrize("table", ["audit_events", "audit_checkpoints", "audit_head"])
def test_postgresql_truncate_is_refused(chain, table):
    if chain.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE guard is PostgreSQL's")
    assert "refused" in refused(chain.engine, f"TRUNCATE {table} CASCADE")


def test_guards_are_idempotent_and_droppable_for_tamper_tests(chain):
    with chain.engine.begin() as connection:
        install_guards(connection)
    refused(chain.engine, REFUSED_ON_EVENTS[0])
    with chain.reading() as session:
        top = trail.head(session)
    extends_nothing = raw_event(top.seq + 5, top.hash, "e" * 64)
    refused(chain.engine, extends_nothing)
    with chain.engine.begin() as connection:
        drop_guards(connection)
        connection.execute(text(REFUSED_ON_EVENTS[0]))
        connection.execute(text(extends_nothing))
        assert connection.execute(text(
            "SELECT actor FROM audit_events WHERE seq = 2")).scalar_one() == "mallory"


def test_a_temporary_audit_events_table_does_not_fool_the_head_guard(chain):
    """A session's temporary table named audit_events comes first in its search_path; the
    guard must still look for the head's next event in the real table (issue 9, point 9)."""
    fake = "f" * 64
    with pytest.raises(DBAPIError, match="audit_head may only advance"):
        with chain.engine.begin() as connection:
            connection.execute(text("CREATE TEMPORARY TABLE audit_events (seq bigint, "
                                    "hash varchar(64))"))
            connection.execute(text(f"INSERT INTO audit_events VALUES (5, '{fake}')"))
            connection.execute(text(f"UPDATE audit_head SET seq = 5, hash = '{fake}'"))
    with chain.reading() as session:
        assert trail.head(session).seq == 4


def raw_event(seq: int, prev_hash: str, digest: str) -> str:
    return ("INSERT INTO audit_events (seq, at, actor, action, prev_hash, hash, canonical) "
            f"VALUES ({seq}, '2026-01-01T00:00:00.000000Z', 'mallory', 'x.y.z', "
            f"'{prev_hash}', '{digest}', '{{}}')")


def test_an_event_is_let_in_only_as_the_heads_next_one(chain):
    """Issue 9: the database itself refuses an event that does not extend the head, on both
    databases (the writer inserts the event before it advances the head)."""
    with chain.reading() as session:
        top = trail.head(session)
    fresh = "e" * 64
    for statement in (raw_event(top.seq + 2, top.hash, fresh),       # a gap
                      raw_event(top.seq, top.hash, fresh),           # the head's own seq
                      raw_event(top.seq + 1, "0" * 64, fresh),       # linked elsewhere
                      raw_event(top.seq + 1, fresh, fresh)):
        assert "must extend the chain head" in refused(chain.engine, statement)
    with chain.reading() as session:
        assert trail.head(session) == top
        assert trail.query_events(session, seq_from=top.seq + 1) == []
    # the guard checks seq and link only: the content is the verifier's to judge
    with chain.engine.begin() as connection:
        connection.execute(text(raw_event(top.seq + 1, top.hash, fresh)))
        connection.execute(text(f"UPDATE audit_head SET seq = {top.seq + 1}, hash = '{fresh}'"))
    append_events(chain, 1)  # the writer goes on from there
    with chain.reading() as session:
        assert trail.head(session).seq == top.seq + 2
