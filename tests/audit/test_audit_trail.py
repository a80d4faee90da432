"""Appending events and reading them back."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from hashlib import sha256

import pytest
from sqlalchemy import func, select

from audit import trail
from audit.canonical import CanonicalError, canonical_text
from audit.schema import GENESIS_HASH, audit_events
from audit_test_support import Item, append_events, audited_write
from qms.db import WRITE_OPTION


def test_append_gives_gapless_seq_and_valid_links(audit_db):
    events = append_events(audit_db, 7)
    assert [event.seq for event in events] == list(range(1, 8))
    previous = GENESIS_HASH
    for event in events:
        assert event.prev_hash == previous
        assert event.hash == sha256(event.canonical.encode("utf-8")).hexdigest()
        previous = event.hash
    with audit_db.reading() as session:
        assert trail.head(session) == trail.Head(7, events[-1].hash)


def test_event_canonical_form_and_columns(audit_db):
    at = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    with audit_db.unit_of_work() as session:
        event = trail.append(session, actor="qa.müller", action="deviation.record.created",
                             data={"after": {"title": "Label jam", "qty": "12.30"}},
                             entity=("deviation", "DEV-2026-00001"), reason="new", at=at)
    document = {"action": "deviation.record.created", "actor": "qa.müller",
                "at": "2026-05-06T07:08:09.123456Z",
                "data": {"after": {"qty": "12.30", "title": "Label jam"}},
                "entity": {"id": "DEV-2026-00001", "type": "deviation"},
                "prev_hash": GENESIS_HASH, "reason": "new", "seq": 1}
    assert event.canonical == canonical_text(document)
    with audit_db.reading() as session:
        [stored] = trail.query_events(session)
    assert stored == event
    assert stored.at_datetime == at


def test_text_fields_are_nfc_normalised_in_columns_and_json(audit_db):
    decomposed = "mu\u0308ller"  # u + combining diaeresis
    with audit_db.unit_of_work() as session:
        event = trail.append(session, actor=decomposed, action="identity.login.failed",
                             data={"name": decomposed}, reason=decomposed)
    assert event.actor == event.reason == event.data["name"] == "müller"
    with audit_db.reading() as session:
        row = session.execute(select(audit_events.c.actor, audit_events.c.reason)).one()
    assert tuple(row) == ("müller", "müller")


def test_integer_entity_ids_are_stored_as_text(audit_db):
    item_id = audited_write(audit_db, "first")
    with audit_db.reading() as session:
        [event] = trail.query_events(session, entity_type="item", entity_id=item_id)
    assert event.entity_id == str(item_id)
    assert json.loads(event.canonical)["entity"] == {"id": str(item_id), "type": "item"}


@pytest.mark.parametrize("changes, error", [
    ({"action": "Deviation.Created"}, "dotted tag"),
    ({"action": "deviation"}, "dotted tag"),
    ({"action": "deviation..created"}, "dotted tag"),
    ({"actor": ""}, "actor"),
    ({"actor": "   "}, "actor"),
    ({"actor": "x" * 151}, "actor longer"),
    ({"data": ["not", "an", "object"]}, "data must be"),
    ({"entity": ("deviation",)}, "entity"),
    ({"entity": ("deviation", None)}, "entity"),
    ({"entity": ("t" * 65, "1")}, "entity type longer"),
    ({"reason": 12}, "reason"),
])
def test_invalid_events_are_refused(audit_db, changes, error):
    arguments = {"actor": "alice", "action": "deviation.record.created", "data": {}, **changes}
    with pytest.raises(trail.AuditError, match=error):
        with audit_db.unit_of_work() as session:
            trail.append(session, **arguments)


def test_floats_in_data_are_refused(audit_db):
    with pytest.raises(CanonicalError, match="float"):
        with audit_db.unit_of_work() as session:
            trail.append(session, actor="alice", action="inspection.result.recorded",
                         data={"value": 12.3})


def test_naive_timestamps_are_refused(audit_db):
    with pytest.raises(CanonicalError, match="naive"):
        with audit_db.unit_of_work() as session:
            trail.append(session, actor="alice", action="inspection.result.recorded",
                         data={}, at=datetime(2026, 1, 1))


def test_rollback_leaves_no_event_and_no_gap(audit_db):
    append_events(audit_db, 2)
    with pytest.raises(RuntimeError):
        with audit_db.unit_of_work() as session:
            session.add(Item(name="lost"))
            trail.append(session, actor="alice", action="test.item.created", data={})
            raise RuntimeError("the record change failed after the event was appended")
    [event] = append_events(audit_db, 1)
    assert event.seq == 3
    with audit_db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0


def test_append_on_a_core_connection(audit_db):
    writer = audit_db.engine.execution_options(**{WRITE_OPTION: True})
    with writer.begin() as connection:
        first = trail.append(connection, actor="system", action="erp.message.delivered",
                             data={"attempt": 1})
        second = trail.append(connection, actor="system", action="erp.message.delivered",
                              data={"attempt": 2})
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)


def test_appended_in_transaction_is_per_transaction(audit_db):
    with audit_db.unit_of_work() as session:
        assert not trail.appended_in_transaction(session.connection())
        trail.append(session, actor="alice", action="test.item.created", data={})
        assert trail.appended_in_transaction(session.connection())
    with audit_db.unit_of_work() as session:
        assert not trail.appended_in_transaction(session.connection())


@pytest.fixture
def sample_events(audit_db):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    specs = [("alice", "deviation.record.created", ("deviation", "DEV-1")),
             ("bob", "deviation.record.updated", ("deviation", "DEV-1")),
             ("bob", "deviationx.record.created", None),
             ("alice", "inspection.result.recorded", ("inspection", "INS-1")),
             ("system", "audit.checkpoint.signed", None)]
    with audit_db.unit_of_work() as session:
        for day, (actor, action, entity) in enumerate(specs):
            trail.append(session, actor=actor, action=action, data={"day": day},
                         entity=entity, at=base + timedelta(days=day))
    return base


def seqs(events) -> list[int]:
    return [event.seq for event in events]


def test_query_events_filters(audit_db, sample_events):
    base = sample_events
    with audit_db.reading() as session:
        assert seqs(trail.query_events(session, action="deviation")) == [1, 2]
        assert seqs(trail.query_events(session, action="deviation.record.created")) == [1]
        assert seqs(trail.query_events(session, actor="alice")) == [1, 4]
        assert seqs(trail.query_events(session, entity_type="deviation",
                                       entity_id="DEV-1")) == [1, 2]
        assert seqs(trail.query_events(session, seq_from=2, seq_to=4)) == [2, 3, 4]
        assert seqs(trail.query_events(session, at_from=base + timedelta(days=1),
                                       at_to=base + timedelta(days=3))) == [2, 3]
        assert seqs(trail.query_events(session, at_from="2026-01-04T00:00:00.000000Z")) == [4, 5]
        assert seqs(trail.query_events(session, limit=2, offset=1)) == [2, 3]
        assert seqs(trail.query_events(session, newest_first=True, limit=2)) == [5, 4]
        assert trail.query_events(session, seq_from=2, limit=1)[0].data == {"day": 1}


def test_action_prefix_escapes_like_wildcards(audit_db, sample_events):
    with audit_db.reading() as session:
        assert trail.query_events(session, action="deviation_record") == []
        assert trail.query_events(session, action="%") == []


def test_iter_events_streams_everything_in_order(audit_db):
    events = append_events(audit_db, 12)
    with audit_db.reading() as session:
        assert list(trail.iter_events(session, batch=5)) == events
        assert seqs(trail.iter_events(session, after_seq=9, batch=2)) == [10, 11, 12]
