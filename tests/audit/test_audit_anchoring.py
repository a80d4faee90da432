"""verify_chain says INTACT only when a checkpoint vouches for the chain, cross-checks each
checkpoint's row, file line and audit.checkpoint.signed event, refuses checkpoints of
another site, and reports events above the head row (issue 9 points 6 and 8)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from audit.checkpoints import _signed, write_checkpoint
from audit.schema import audit_checkpoints
from audit.verify import verify_chain
from audit_test_support import SITE, append_events, tamper


def verify(database, public_keys, checkpoint_file=None, site=SITE):
    with database.engine.connect() as connection:
        return verify_chain(connection, public_keys=public_keys, checkpoint_file=checkpoint_file,
                            site=site)


def checkpoint(database, signing_key, checkpoint_file, site=SITE):
    with database.unit_of_work() as session:
        return write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file,
                                site=site)


def hash_at(database, seq: int) -> str:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT hash FROM audit_events WHERE seq = :s"),
                                  {"s": seq}).scalar_one()


@pytest.fixture
def anchored(audit_db, signing_key, checkpoint_file):
    """Events 1..10, checkpoint at 10 (event 11), events 12..13, checkpoint at 13 (14)."""
    append_events(audit_db, 10)
    checkpoint(audit_db, signing_key, checkpoint_file)
    append_events(audit_db, 2)
    checkpoint(audit_db, signing_key, checkpoint_file)
    return audit_db


def test_a_chain_without_checkpoints_is_unanchored_not_intact(audit_db, public_keys,
                                                             checkpoint_file):
    append_events(audit_db, 10)
    result = verify(audit_db, public_keys, checkpoint_file)
    assert (result.verdict, result.ok, result.first_bad_seq) == ("UNANCHORED", False, None)
    assert (result.anchored_seq, result.unanchored_events) == (0, 10)


def test_an_anchored_chain_is_intact_and_counts_the_events_after_the_anchor(
        anchored, public_keys, checkpoint_file):
    append_events(anchored, 3)
    result = verify(anchored, public_keys, checkpoint_file)
    assert (result.verdict, result.ok) == ("INTACT", True), result.problems
    assert (result.anchored_seq, result.unanchored_events) == (13, 4)


def test_a_checkpoint_removed_from_rows_and_file_is_named_by_its_event(
        anchored, public_keys, checkpoint_file):
    tamper(anchored.engine, "DELETE FROM audit_checkpoints WHERE seq = 10")
    lines = checkpoint_file.read_text().splitlines(keepends=True)
    checkpoint_file.write_text("".join(line for line in lines if '"seq":10' not in line))
    result = verify(anchored, public_keys, checkpoint_file)
    assert result.verdict == "BROKEN" and result.first_bad_seq == 11, result.problems
    assert "event 11 records a checkpoint at seq 10" in result.problem
    assert "in no checkpoint row" in result.problem


def test_a_checkpoint_row_without_its_event_is_broken(anchored, signing_key, public_keys,
                                                      checkpoint_file):
    """Validly signed over the real hash (a stolen key), but the chain never recorded it."""
    forged = _signed(signing_key, 5, hash_at(anchored, 5), "2026-01-01T00:00:00.000000Z", SITE)
    with anchored.engine.begin() as connection:
        connection.execute(audit_checkpoints.insert().values(
            seq=5, hash=forged.hash, at=forged.at, key_id=forged.key_id,
            signature=forged.signature, canonical=forged.canonical))
    with open(checkpoint_file, "a", encoding="utf-8") as handle:
        handle.write(forged.line() + "\n")
    result = verify(anchored, public_keys, checkpoint_file)
    assert result.verdict == "BROKEN" and result.first_bad_seq == 6, result.problems
    assert "checkpoint at seq 5" in result.problem and "not followed by its" in result.problem


def test_a_checkpoint_event_that_records_no_checkpoint_is_broken(anchored, public_keys,
                                                                 checkpoint_file):
    tamper(anchored.engine, "DELETE FROM audit_checkpoints")
    result = verify(anchored, public_keys)
    assert result.verdict == "BROKEN" and result.first_bad_seq == 11, result.problems
    assert "in no checkpoint row" in result.problem


def test_a_checkpoint_of_another_site_is_refused(audit_db, signing_key, public_keys,
                                                 checkpoint_file):
    """A copy restored from production holds the same key; its checkpoints name its site."""
    append_events(audit_db, 4)
    checkpoint(audit_db, signing_key, checkpoint_file, site="site-validation-copy")
    assert verify(audit_db, public_keys, checkpoint_file, site="site-validation-copy").ok
    result = verify(audit_db, public_keys, checkpoint_file)
    assert result.verdict == "BROKEN" and result.first_bad_seq == 1, result.problems
    assert "signed for site 'site-validation-copy'" in result.problem
    assert f"not for this instance's site '{SITE}'" in result.problem


@pytest.mark.parametrize("wound_back_to", [0, 8])
def test_events_above_the_head_row_are_reported(anchored, public_keys, checkpoint_file,
                                                wound_back_to):
    head_hash = hash_at(anchored, wound_back_to) if wound_back_to else "0" * 64
    tamper(anchored.engine, f"UPDATE audit_head SET seq = {wound_back_to}, hash = '{head_hash}'")
    result = verify(anchored, public_keys, checkpoint_file)
    assert result.verdict == "BROKEN", result
    assert any(f"the head row says seq {wound_back_to} but the chain goes on to seq 14" in why
               for why in result.problems), result.problems


def test_a_checkpoint_committed_during_the_verification_is_no_alarm(
        audit_db, signing_key, public_keys, checkpoint_file, monkeypatch):
    """Head and rows are read before the walk; a checkpoint committed in between has its
    event in the walk but not its row: that is not a removed checkpoint."""
    import audit.verify

    append_events(audit_db, 5)
    with audit_db.engine.connect() as connection:
        head_before = audit.verify.head(connection)
    checkpoint(audit_db, signing_key, checkpoint_file)
    reads = iter([head_before])
    real_head = audit.verify.head
    monkeypatch.setattr(audit.verify, "head", lambda c: next(reads, None) or real_head(c))
    monkeypatch.setattr(audit.verify, "list_checkpoints", lambda c: [])  # read before it
    result = verify(audit_db, public_keys)
    assert not result.problems and result.verdict == "UNANCHORED", result.problems
