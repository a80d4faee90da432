"""The canonical-form check in worker processes (audit.form_workers) answers as the inline
check does, chunk for chunk, also when a worker dies or the walk stops early; and a chain
walked with workers gets the same verdict, first bad seq and problem as without."""
from __future__ import annotations

import pytest

import audit.scan
from audit.canonical import canonical_bytes
from audit.form_workers import FormChecks
from audit.verify import verify_chain
from audit_test_support import append_events, rewrite_event_text

GOOD = canonical_bytes({"action": "deviation.record.created", "actor": "alice",
                        "at": "2026-05-04T08:00:00.000000Z", "data": {"title": "Grüße"},
                        "entity": None, "prev_hash": "0" * 64, "reason": None, "seq": 1})
BAD = GOOD.replace(b'"data":{', b'"data": {')


def chunks_of(texts_per_chunk: list[list[bytes | None]]) -> list[list[tuple]]:
    """Rows (seq, prev_hash, hash, text) with consecutive seqs, in chunks."""
    seq, chunks = 0, []
    for texts in texts_per_chunk:
        chunks.append([(seq := seq + 1, "p", "h", text) for text in texts])
    return chunks


CHUNKS = chunks_of([[GOOD] * 50, [GOOD] * 7 + [BAD] + [GOOD] * 3, [GOOD, None, BAD],
                    [GOOD] * 20, [BAD, GOOD], [GOOD] * 5 + [BAD]])


def answers(workers: int, chunks: list[list[tuple]], form_known_through: int = 0,
            kill_after: int | None = None) -> list[int | None]:
    checks = FormChecks(workers, form_known_through)
    found = []
    try:
        for number, rows in enumerate(chunks):
            checks.submit(rows)
            if number == kill_after:
                for worker in checks._workers:
                    worker._process.kill()
            while checks.due():
                found.append(checks.next_answer()[1])
        while checks.pending():
            found.append(checks.next_answer()[1])
    finally:
        checks.close()
    return found


def test_workers_answer_as_the_inline_check():
    inline = answers(0, CHUNKS)
    assert inline == [None, 7, 1, None, 0, 5]
    assert answers(1, CHUNKS) == inline
    assert answers(3, CHUNKS) == inline


def test_rows_whose_form_is_known_are_not_checked():
    # seqs 1..58 are known canonical: the BAD at seq 58 is not looked at again
    assert answers(2, CHUNKS, form_known_through=58) == answers(0, CHUNKS, 58) == [
        None, None, 1, None, 0, 5]


def test_a_dead_worker_leaves_its_chunks_to_the_inline_check():
    assert answers(2, CHUNKS, kill_after=1) == answers(0, CHUNKS)


def test_closing_with_answers_outstanding_stops_the_workers():
    checks = FormChecks(2, 0)
    for rows in CHUNKS:
        checks.submit(rows)
    processes = [worker._process for worker in checks._workers]
    checks.close()
    assert processes and all(process.poll() is not None for process in processes)


def use_workers(monkeypatch) -> list[int]:
    """Make verify_chain check the form with two workers, in chunks of 4 events; returns
    the number of workers each walk started."""
    started = []

    class CountedFormChecks(FormChecks):
        def __init__(self, workers, form_known_through):
            super().__init__(workers, form_known_through)
            started.append(len(self._workers))

    monkeypatch.setattr(audit.scan, "CHUNK_ROWS", 4)
    monkeypatch.setattr(audit.scan, "form_workers", lambda events_to_check: 2)
    monkeypatch.setattr(audit.scan, "FormChecks", CountedFormChecks)
    return started


def verify(database, **options):
    with database.engine.connect() as connection:
        return verify_chain(connection, public_keys={}, **options)


def stored(database, column: str, seq: int):
    with database.engine.connect() as connection:
        return connection.exec_driver_sql(
            f"SELECT {column} FROM audit_events WHERE seq = {seq}").scalar_one()


@pytest.mark.parametrize("seq", [1, 5, 8, 13])
def test_a_chain_walked_with_workers_gets_the_same_verdict(audit_db, monkeypatch, seq):
    append_events(audit_db, 14)
    original = stored(audit_db, "canonical", seq)
    rewrite_event_text(audit_db.engine, seq, original.replace('"data":{', '"data": {', 1))
    inline = verify(audit_db)
    started = use_workers(monkeypatch)
    parallel = verify(audit_db)
    assert started == [2]
    assert parallel == inline
    assert parallel.first_bad_seq == seq and "canonical form" in parallel.problem


def test_an_intact_chain_walked_with_workers_is_consistent(audit_db, monkeypatch):
    append_events(audit_db, 14)
    started = use_workers(monkeypatch)
    result = verify(audit_db)
    assert not result.problems and result.form_checked[0] == 14
    again = verify(audit_db, form_known=(9, stored(audit_db, "hash", 9)))
    assert again == result
    assert started == [2, 2]
