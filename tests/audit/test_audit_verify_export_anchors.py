"""The stand-alone verifier says INTACT only with proof: a checkpoint verified under a given
public key. The external checkpoint file (--checkpoints) catches what a database owner can
hide in an export: deleted checkpoint rows with a rewritten or truncated chain."""
from __future__ import annotations

import pytest

from audit.checkpoints import write_checkpoint
from audit_test_support import append_events, rewrite_chain_from, tamper
from test_audit_export import export_to, exported, lines_of, verify_module  # noqa: F401


def test_without_a_key_the_verdict_is_unanchored(exported, checkpoint_file):
    path, _pem, _document = exported
    for files in ([], [checkpoint_file]):
        result = verify_module(path, checkpoints=files)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == (
            "UNANCHORED: the chain is internally consistent but nothing proves it was not "
            "rewritten")
        assert "9 events, head seq 9" in result.stdout
        assert "no --public-key given" in result.stdout
        assert "2 checkpoint(s) match the chain but their signatures were NOT checked" \
            in result.stdout
        assert "INTACT" not in result.stdout
    accepted = verify_module(path, options=["--allow-unanchored"])
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.startswith("UNANCHORED: ")
    assert "WARNING: accepted without an anchor because of --allow-unanchored" \
        in accepted.stdout


def test_export_without_checkpoints_is_unanchored_even_with_a_key(exported, audit_db,
                                                                  tmp_path):
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    path = tmp_path / "no-checkpoints.jsonl"
    assert export_to(audit_db, path) == 9
    assert all(b'"checkpoint"' not in line for line in lines_of(path))
    result = verify_module(path, pem)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("UNANCHORED: ")
    assert "no checkpoint at or below the head (seq 9) in the export" in result.stdout
    assert "--checkpoints" in result.stdout
    assert verify_module(path, pem, options=["--allow-unanchored"]).returncode == 0


def test_empty_checkpoint_file_anchors_nothing(exported, audit_db, tmp_path):
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    path = tmp_path / "no-checkpoints.jsonl"
    export_to(audit_db, path)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = verify_module(path, pem, checkpoints=[empty])
    assert result.returncode == 1
    assert "in the export or the checkpoint file(s)" in result.stdout


@pytest.mark.parametrize("rewritten_from, first_bad", [(4, 4), (6, 4), (2, 1)])
def test_rewrite_with_deleted_checkpoint_rows_is_caught_by_the_file(
        exported, audit_db, checkpoint_file, tmp_path, rewritten_from, first_bad):
    """The owner deletes the checkpoint rows and rewrites the chain consistently from
    ``rewritten_from``; the export alone shows nothing. The external file's checkpoints (at
    seq 3 and 7) name the first seq that cannot be vouched for: the one after the last
    checkpoint that still matches."""
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    rewrite_chain_from(audit_db.engine, rewritten_from, new_actor="mallory")
    path = tmp_path / "rewritten.jsonl"
    assert export_to(audit_db, path) == 9
    alone = verify_module(path, pem)
    assert alone.returncode == 1 and alone.stdout.startswith("UNANCHORED: ")
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"BROKEN at seq {first_bad}: checkpoint at seq ")
    assert "audit-checkpoints.jsonl line" in result.stdout
    assert "the chain was rewritten" in result.stdout


def test_intact_export_with_the_checkpoint_file_is_intact(exported, checkpoint_file):
    path, pem, document = exported
    result = verify_module(path, pem, document, checkpoints=[checkpoint_file])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("INTACT: 9 events, head seq 9 hash ")
    assert lines[1].startswith("2 checkpoint(s) match the chain, signatures valid "
                               "(2 of them in the checkpoint file(s)); the last anchor at "
                               "seq 7, signed ")
    assert lines[2] == "events after the last anchor: 2 (events 8..9: hash-linked, not yet " \
                       "under a checkpoint)"
    assert len(lines) == 3


def test_truncated_tail_with_deleted_checkpoint_row_is_caught_by_the_file(
        exported, audit_db, checkpoint_file, tmp_path):
    """Events 7..9 and the checkpoint row at seq 7 deleted, the head row moved back: the
    export is consistent and anchored by the checkpoint at seq 3, but the file knows seq 7."""
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_events WHERE seq >= 7",
           "DELETE FROM audit_checkpoints WHERE seq >= 7",
           "UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_events WHERE seq = 6)")
    path = tmp_path / "truncated.jsonl"
    assert export_to(audit_db, path) == 6
    alone = verify_module(path, pem)
    assert alone.returncode == 0 and "events after the last anchor: 3" in alone.stdout
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("BROKEN at seq 7: checkpoint at seq 7 (")
    assert "lies beyond the last event 6: event 7 removed" in result.stdout
    # signatures are what make it proof, but the mismatch shows even without a key
    assert verify_module(path, checkpoints=[checkpoint_file]).stdout.startswith(
        "BROKEN at seq 7")


def test_export_older_than_a_later_checkpoint_is_intact_with_a_warning(
        exported, audit_db, signing_key, checkpoint_file):
    path, pem, _document = exported
    append_events(audit_db, 2)
    with audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file)
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("INTACT: 9 events")
    assert "WARNING: the checkpoint file(s) hold 1 checkpoint(s) signed after this export " \
           "was made" in result.stdout
    assert "the newest at seq 11" in result.stdout
    assert "says nothing about events after seq 9" in result.stdout


def test_export_checkpoint_missing_from_the_file_is_a_warning(exported, checkpoint_file,
                                                              tmp_path):
    path, pem, _document = exported
    older_copy = tmp_path / "older-copy.jsonl"
    older_copy.write_bytes(lines_of(checkpoint_file)[0])  # only the checkpoint at seq 3
    result = verify_module(path, pem, checkpoints=[older_copy])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(1 of them in the checkpoint file(s))" in result.stdout
    assert "WARNING: 1 checkpoint(s) of the export are not in the checkpoint file(s), so " \
           "not anchored externally: seq 7" in result.stdout


def test_several_checkpoint_files_are_read(exported, checkpoint_file, tmp_path):
    path, pem, _document = exported
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(lines_of(checkpoint_file)[0])
    second.write_bytes(lines_of(checkpoint_file)[1] + b"\n")  # a blank line is ignored
    result = verify_module(path, pem, checkpoints=[first, second])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(2 of them in the checkpoint file(s))" in result.stdout
    assert "WARNING" not in result.stdout


@pytest.mark.parametrize("change, seq, why", [
    # a forged checkpoint at seq 7: nothing after the checkpoint at seq 3 is vouched for
    (lambda line: line.replace(b'"signature":"', b'"signature":"A'), 4, "does not verify"),
    # a line that says nothing readable: placed after the last checkpoint that verified
    # (the export's own one at seq 7)
    (lambda line: line.replace(b'"seq":', b'"seq": '), 8, "not in canonical form"),
    (lambda line: line[:40], 8, "not canonical JSON"),
])
def test_forged_or_damaged_file_lines_are_broken(exported, checkpoint_file, tmp_path, change,
                                                 seq, why):
    path, pem, _document = exported
    lines = lines_of(checkpoint_file)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(lines[0] + change(lines[1].rstrip(b"\n")) + b"\n")
    result = verify_module(path, pem, checkpoints=[damaged])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"BROKEN at seq {seq}: "), result.stdout
    assert "damaged.jsonl line 2" in result.stdout and why in result.stdout


def test_every_problem_is_listed_lowest_seq_first(exported, audit_db, checkpoint_file,
                                                  tmp_path):
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    rewrite_chain_from(audit_db.engine, 2, new_actor="mallory")
    path = tmp_path / "rewritten.jsonl"
    export_to(audit_db, path)
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("BROKEN at seq 1: checkpoint at seq 3 ")
    assert lines[1].startswith("also at seq 1: checkpoint at seq 7 ")
