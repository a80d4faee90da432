"""verify_chain: an intact chain passes; every kind of tampering is named at the right seq."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from audit import scan, trail
from audit.canonical import canonical_text
from audit.checkpoints import key_id, write_checkpoint
from audit.guards import drop_guards
from audit.verify import verify_chain
from audit_test_support import SITE, append_events, create_schema, rewrite_chain_from, tamper
from qms.db import Database


def verify(database, public_keys, checkpoint_file=None, **options):
    with database.engine.connect() as connection:
        return verify_chain(connection, public_keys=public_keys, checkpoint_file=checkpoint_file,
                            **options)


def checkpoint(database, signing_key, checkpoint_file):
    with database.unit_of_work() as session:
        return write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)


@pytest.fixture
def chain(audit_db):
    """Ten events, no checkpoint."""
    append_events(audit_db, 10)
    return audit_db


def assert_broken(result, seq: int, *words: str) -> None:
    assert not result.ok
    assert result.first_bad_seq == seq, result.problems
    for word in words:
        assert word in result.problem, result.problem


def test_empty_chain_is_unanchored(audit_db):
    result = verify(audit_db, {})
    assert result.verdict == "UNANCHORED" and not result.ok and not result.problems
    assert (result.events_checked, result.head_seq) == (0, 0)


def test_intact_chain_with_checkpoints(chain, signing_key, public_keys, checkpoint_file):
    checkpoint(chain, signing_key, checkpoint_file)
    append_events(chain, 3)
    checkpoint(chain, signing_key, checkpoint_file)
    seen = []
    result = verify(chain, public_keys, checkpoint_file, progress=seen.append)
    assert result.ok, result.problems
    assert (result.events_checked, result.head_seq, result.checkpoints_checked) == (15, 15, 4)
    assert result.first_bad_seq is None and result.problem is None
    assert seen and seen[-1] == 15
    with chain.reading() as session:
        assert verify_chain(session, public_keys=public_keys).ok  # a Session works as well


def test_a_checkpoint_under_an_unknown_key_is_a_problem(chain, signing_key, checkpoint_file):
    checkpoint(chain, signing_key, checkpoint_file)
    assert_broken(verify(chain, {}), 1, "unknown key")


def test_a_wrongly_labelled_public_key_is_refused(chain, signing_key):
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ValueError, match="key id"):
        verify(chain, {key_id(signing_key.public_key()): other})


def test_a_edited_canonical_bytes(chain):
    tamper(chain.engine, "UPDATE audit_events SET canonical = replace(canonical, "
                         "'\"qty\":\"12.30\"', '\"qty\":\"99.99\"') WHERE seq = 5")
    assert_broken(verify(chain, {}), 5, "event 5", "content was altered")


def test_b_edited_queryable_column(chain):
    tamper(chain.engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 6")
    assert_broken(verify(chain, {}), 6, "event 6", "actor")


@pytest.mark.parametrize("column, value", [("reason", "NULL"), ("entity_id", "'DEV-X'"),
                                           ("at", "'2020-01-01T00:00:00.000000Z'"),
                                           ("action", "'deviation.record.deleted'")])
def test_b_every_queryable_column_is_compared(chain, column, value):
    tamper(chain.engine, f"UPDATE audit_events SET {column} = {value} WHERE seq = 3")
    assert_broken(verify(chain, {}), 3, column)


def test_c_deleted_middle_event(chain):
    tamper(chain.engine, "DELETE FROM audit_events WHERE seq = 4")
    assert_broken(verify(chain, {}), 4, "event 4 is missing")


def test_d_reordered_events(chain):
    tamper(chain.engine, "UPDATE audit_events SET seq = -5 WHERE seq = 5",
           "UPDATE audit_events SET seq = 5 WHERE seq = 6",
           "UPDATE audit_events SET seq = 6 WHERE seq = -5")
    assert_broken(verify(chain, {}), 5, "event 5")


def test_e_removed_tail_is_caught_by_a_checkpoint(chain, signing_key, public_keys,
                                                  checkpoint_file):
    checkpoint(chain, signing_key, checkpoint_file)  # signs seq 10, appends event 11
    append_events(chain, 3)
    with chain.reading() as session:
        hash_8 = session.execute(text("SELECT hash FROM audit_events WHERE seq = 8")).scalar()
    # the attacker also winds the head row back, so the database looks consistent
    tamper(chain.engine, "DELETE FROM audit_events WHERE seq > 8",
           f"UPDATE audit_head SET seq = 8, hash = '{hash_8}'")
    assert verify(chain, public_keys).first_bad_seq == 9  # the checkpoint row suffices
    result = verify(chain, public_keys, checkpoint_file)
    assert_broken(result, 9, "beyond the chain's end", "events 9..10 removed")
    tamper(chain.engine, "DELETE FROM audit_checkpoints")
    assert_broken(verify(chain, public_keys, checkpoint_file), 9, "removed")
    # without any anchor a clean truncation is invisible, but no longer called intact
    result = verify(chain, public_keys)
    assert (result.verdict, result.ok, result.problems) == ("UNANCHORED", False, ())


def test_head_row_disagreeing_with_the_chain(chain):
    tamper(chain.engine, "DELETE FROM audit_events WHERE seq > 7")
    assert_broken(verify(chain, {}), 8, "head row", "events 8..10 missing")


def rewrite_checkpoint_rows(engine, signing_key, seq_from: int) -> None:
    """Re-sign every checkpoint row from ``seq_from`` over the (rewritten) chain."""
    kid = key_id(signing_key.public_key())
    with engine.begin() as connection:
        drop_guards(connection)
        rows = connection.execute(text(
            "SELECT c.id, c.seq, c.at, e.hash FROM audit_checkpoints c "
            "JOIN audit_events e ON e.seq = c.seq WHERE c.seq >= :s"), {"s": seq_from}).all()
        for row_id, seq, at, digest in rows:
            payload = canonical_text({"at": at, "hash": digest, "key_id": kid, "seq": seq})
            signature = base64.b64encode(signing_key.sign(payload.encode())).decode()
            connection.execute(text(
                "UPDATE audit_checkpoints SET hash = :h, key_id = :k, signature = :sig, "
                "canonical = :c WHERE id = :id"),
                {"h": digest, "k": kid, "sig": signature, "c": payload, "id": row_id})


@pytest.fixture
def two_checkpoints(audit_db, signing_key, checkpoint_file):
    append_events(audit_db, 4)
    checkpoint(audit_db, signing_key, checkpoint_file)  # seq 4, event 5
    append_events(audit_db, 4)
    checkpoint(audit_db, signing_key, checkpoint_file)  # seq 9, event 10
    append_events(audit_db, 2)
    return audit_db


def test_f_consistent_rewrite_with_checkpoints_resigned_by_another_key(
        two_checkpoints, public_keys, checkpoint_file):
    rewrite_chain_from(two_checkpoints.engine, 7, new_actor="mallory")
    attacker = Ed25519PrivateKey.generate()
    rewrite_checkpoint_rows(two_checkpoints.engine, attacker, seq_from=7)
    # the links are all consistent; only the signed anchors reveal the rewrite after seq 4
    assert_broken(verify(two_checkpoints, public_keys), 5, "seq 9", "unknown key")
    result = verify(two_checkpoints, public_keys, checkpoint_file)
    assert_broken(result, 5)
    assert any("the chain was rewritten" in problem for problem in result.problems)


def test_f_rewrite_resigned_with_the_stolen_server_key_is_caught_by_the_file(
        two_checkpoints, signing_key, public_keys, checkpoint_file):
    rewrite_chain_from(two_checkpoints.engine, 7, new_actor="mallory")
    rewrite_checkpoint_rows(two_checkpoints.engine, signing_key, seq_from=7)
    # the re-signed rows no longer match the checkpoint events inside the chain
    assert_broken(verify(two_checkpoints, public_keys), 10, "in no checkpoint row")
    result = verify(two_checkpoints, public_keys, checkpoint_file)
    assert_broken(result, 5, "seq 9")
    assert any("missing from the checkpoint file" in problem for problem in result.problems)


def test_f_forged_signature_with_the_real_key_id(two_checkpoints, signing_key, public_keys):
    rewrite_chain_from(two_checkpoints.engine, 2, new_actor="mallory")
    forger = Ed25519PrivateKey.generate()
    rewrite_checkpoint_rows(two_checkpoints.engine, forger, seq_from=1)
    kid = key_id(signing_key.public_key())
    tamper(two_checkpoints.engine, "UPDATE audit_checkpoints SET canonical = replace("
                                   f"canonical, '{key_id(forger.public_key())}', '{kid}'), "
                                   f"key_id = '{kid}'")
    assert_broken(verify(two_checkpoints, public_keys), 1, "does not verify")


def test_missing_checkpoint_file_is_a_problem_once_checkpoints_exist(
        two_checkpoints, public_keys, checkpoint_file):
    checkpoint_file.unlink()
    result = verify(two_checkpoints, public_keys, checkpoint_file)
    assert_broken(result, 1, "missing from the checkpoint file")


def test_awkward_text_in_every_field_verifies(audit_db):
    """Escapes, quotes, non-ASCII and separators must not look like tampering to the
    database-side column comparison (json_extract on SQLite, rebuilt frames on PostgreSQL)."""
    awkward = 'q"uo\\te \b\f\n\r\t\x01\x1f\x7f \u2028 é 中文 😀 ,"seq":1}'
    with audit_db.unit_of_work() as session:
        trail.append(session, actor=awkward, action="test.awkward.text",
                     data={"nul": "a\x00b", "text": awkward}, entity=(awkward, awkward),
                     reason=awkward)
        trail.append(session, actor="x", action="test.awkward.text", data={}, reason="")
    result = verify(audit_db, {})
    assert result.verdict == "UNANCHORED" and not result.problems, result.problems


def test_column_check_falls_back_to_python(chain, monkeypatch):
    monkeypatch.setitem(scan._DISAGREEING_SQL, chain.engine.dialect.name,
                        "SELECT no_such_function()")
    assert not verify(chain, {}).problems
    tamper(chain.engine, "UPDATE audit_events SET entity_type = 'capa' WHERE seq = 8")
    assert_broken(verify(chain, {}), 8, "entity_type")


def test_in_memory_database_checks_columns_on_the_callers_connection():
    engine = create_engine("sqlite://", poolclass=StaticPool)
    create_schema(engine)
    database = Database(engine)
    append_events(database, 4)
    assert not verify(database, {}).problems
    with engine.begin() as connection:
        drop_guards(connection)
        connection.execute(text("UPDATE audit_events SET reason = 'forged' WHERE seq = 2"))
    assert_broken(verify(database, {}), 2, "reason")
    engine.dispose()
