"""Concurrent writers in separate processes, and a writer killed inside its transaction."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from audit import trail
from audit.verify import verify_chain
from audit_test_support import ITEM_ACTION, Item, audited_write
from audit_test_support import ROOT

WORKER = ROOT / "tests" / "audit" / "audit_writer.py"
WRITERS, WRITES_EACH = 8, 200


def start_writer(url: str, worker: str, count: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), url, worker, count], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def chain_state(database) -> tuple[int, trail.Head]:
    with database.reading() as session:
        return session.scalar(select(func.count()).select_from(Item)), trail.head(session)


@pytest.mark.slow
def test_concurrent_writers_keep_the_chain_gapless(audit_url, audit_db):
    writers = [start_writer(audit_url, f"writer{n}", str(WRITES_EACH)) for n in range(WRITERS)]
    acknowledged = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        acknowledged += [int(line) for line in out.split()]
    assert len(acknowledged) == WRITERS * WRITES_EACH
    with audit_db.reading() as session:
        result = verify_chain(session)
        events = list(trail.iter_events(session, batch=500))
        item_ids = set(session.scalars(select(Item.id)))
    assert not result.problems, result.problems  # no checkpoint here: UNANCHORED
    assert [event.seq for event in events] == list(range(1, WRITERS * WRITES_EACH + 1))
    assert result.head_seq == WRITERS * WRITES_EACH
    assert set(acknowledged) <= item_ids
    audited = {int(event.entity_id) for event in events if event.action == ITEM_ACTION}
    assert set(acknowledged) <= audited
    assert len(item_ids) == len(audited) == WRITERS * WRITES_EACH


def test_writer_killed_inside_its_transaction_leaves_nothing(audit_url, audit_db):
    for number in range(3):
        audited_write(audit_db, f"before-{number}")
    before = chain_state(audit_db)
    writer = start_writer(audit_url, "doomed", "hang")
    try:
        assert writer.stdout.readline().strip() == "READY", writer.stderr.read()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=60)
    assert chain_state(audit_db) == before
    with audit_db.reading() as session:
        assert not verify_chain(session).problems
    audited_write(audit_db, "after")  # on PostgreSQL this waits until the backend is gone
    count, head = chain_state(audit_db)
    assert (count, head.seq) == (before[0] + 1, before[1].seq + 1)
    with audit_db.reading() as session:
        [event] = trail.query_events(session, seq_from=head.seq)
        assert event.prev_hash == before[1].hash
        assert not verify_chain(session).problems
