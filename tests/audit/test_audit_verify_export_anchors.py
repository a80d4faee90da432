"""The stand-alone verifier says INTACT only with proof: a checkpoint verified under a given
public key. The external checkpoint file (--checkpoints) catches what a database owner can
hide in an export: deleted checkpoint rows with a rewritten or truncated chain."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization

from audit.canonical import canonical_bytes

from audit.checkpoints import write_checkpoint
from audit_test_support import SITE, append_events, rewrite_chain_from, tamper
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
        assert "3 checkpoint(s) match the chain but their signatures were NOT checked" \
            in result.stdout
        assert "INTACT" not in result.stdout
    accepted = verify_module(path, options=["--allow-unanchored"])
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.startswith("UNANCHORED: ")
    assert "WARNING: accepted without checking signatures because of --allow-unanchored" \
        in accepted.stdout


def without_checkpoint_lines(path, tmp_path):
    """The export with its checkpoint lines cut off (as an export of format /1 could be)."""
    cut = tmp_path / "no-checkpoints.jsonl"
    cut.write_bytes(b"".join(line for line in lines_of(path)
                             if not line.startswith(b'{"checkpoint"')))
    return cut


def test_export_without_its_closing_checkpoint_is_unanchored_even_with_a_key(
        exported, tmp_path):
    path, pem, _document = exported
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines_of(path)[:-1]))  # the closing checkpoint removed
    result = verify_module(cut, pem)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("UNANCHORED: ")
    assert "the last event (seq 9) is under no signed checkpoint of the export" in result.stdout
    assert "events 8..9 could have been rewritten after the last anchor at seq 7" \
        in result.stdout
    # never accepted: --allow-unanchored is only for a verification without any key
    assert verify_module(cut, pem, options=["--allow-unanchored"]).returncode == 1


def test_empty_checkpoint_file_anchors_nothing(exported, tmp_path):
    path, pem, _document = exported
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = verify_module(without_checkpoint_lines(path, tmp_path), pem, checkpoints=[empty])
    # nothing anchors it, and the chain's checkpoint events name checkpoints that are gone
    assert result.returncode == 1 and "INTACT" not in result.stdout
    assert "not among the export's checkpoints" in result.stdout


def test_cut_export_with_a_rewritten_tail_and_a_backdated_header_is_never_intact(
        exported, audit_db, signing_key, checkpoint_file, tmp_path):
    """Issue 9 point 5: cut an export between checkpoints, rewrite its tail with consistent
    hashes, back-date the header so that the file's later checkpoints look "signed after
    the export": UNANCHORED (exit 1), never INTACT with a warning."""
    path, pem, _document = exported
    lines = lines_of(path)
    header, events = json.loads(lines[0]), [json.loads(line) for line in lines[1:10]]
    prev = hashlib.sha256(lines[7].rstrip(b"\n")).hexdigest()  # event 7, under the anchor
    forged = []
    for event in events[7:]:  # events 8 and 9 rewritten
        event["actor"], event["prev_hash"] = "mallory", prev
        text = canonical_bytes(event)
        forged.append(text + b"\n")
        prev = hashlib.sha256(text).hexdigest()
    header["head"] = {"hash": prev, "seq": 9}
    header["exported_at"] = events[6]["at"]  # just after event 7: "before" checkpoint 9
    cut = tmp_path / "forged.jsonl"
    cut.write_bytes(canonical_bytes(header) + b"\n" + b"".join(lines[1:8]) + b"".join(forged)
                    + b"".join(lines[10:12]))  # the checkpoints at seq 3 and 7 only
    result = verify_module(cut, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTACT" not in result.stdout and "WARNING" not in result.stdout
    assert result.stdout.startswith(("UNANCHORED: ", "BROKEN at seq ")), result.stdout
    without_file = verify_module(cut, pem)
    assert without_file.returncode == 1
    assert without_file.stdout.startswith("UNANCHORED: "), without_file.stdout


def test_an_export_dated_before_its_first_event_is_refused(exported, tmp_path):
    path, pem, _document = exported
    lines = lines_of(path)
    header = json.loads(lines[0])
    header["exported_at"] = "2000-01-01T00:00:00.000000Z"
    backdated = tmp_path / "backdated.jsonl"
    backdated.write_bytes(canonical_bytes(header) + b"\n" + b"".join(lines[1:]))
    result = verify_module(backdated, pem)
    assert result.returncode == 1
    assert result.stdout.startswith("BROKEN at seq 1: the header's exported_at "
                                    "2000-01-01T00:00:00.000000Z is before the first event")


def test_a_header_dated_otherwise_than_its_closing_checkpoint_is_broken(exported, tmp_path):
    path, pem, _document = exported
    lines = lines_of(path)
    header = json.loads(lines[0])
    header["exported_at"] = json.loads(lines[9])["at"]  # after the last event, but not signed
    redated = tmp_path / "redated.jsonl"
    redated.write_bytes(canonical_bytes(header) + b"\n" + b"".join(lines[1:]))
    result = verify_module(redated, pem)
    assert result.returncode == 1
    assert "is not the closing checkpoint's signed time" in result.stdout


@pytest.mark.parametrize("rewritten_from, first_bad", [(4, 4), (6, 4), (2, 1)])
def test_rewrite_with_deleted_checkpoint_rows_is_caught_by_the_file(
        exported, audit_db, signing_key, checkpoint_file, tmp_path, rewritten_from,
        first_bad):
    """The owner deletes the checkpoint rows and rewrites the chain consistently from
    ``rewritten_from``; the export alone shows nothing. The external file's checkpoints (at
    seq 3 and 7) name the first seq that cannot be vouched for: the one after the last
    checkpoint that still matches."""
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    rewrite_chain_from(audit_db.engine, rewritten_from, new_actor="mallory")
    path = tmp_path / "rewritten.jsonl"
    assert export_to(audit_db, path, signing_key, checkpoint_file) == 10
    # the chain's own checkpoint events still name the deleted checkpoints
    alone = verify_module(path, pem)
    assert alone.returncode == 1 and alone.stdout.startswith("BROKEN at seq "), alone.stdout
    assert "not among the export's checkpoints" in alone.stdout
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"BROKEN at seq {first_bad}: "), result.stdout
    assert "audit-checkpoints.jsonl line" in result.stdout
    assert "the chain was rewritten" in result.stdout


def test_intact_export_with_the_checkpoint_file_is_intact(exported, checkpoint_file):
    path, pem, document = exported
    result = verify_module(path, pem, document, checkpoints=[checkpoint_file])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("INTACT: 9 events, head seq 9 hash ")
    assert lines[1].startswith("3 checkpoint(s) match the chain, signatures valid "
                               "(3 of them in the checkpoint file(s)); the export's closing "
                               "checkpoint at seq 9, signed ")
    assert len(lines) == 2


def test_truncated_tail_with_deleted_checkpoint_row_is_caught_by_the_file(
        exported, audit_db, signing_key, checkpoint_file, tmp_path):
    """Events 7..9 and the checkpoint row at seq 7 deleted, the head row moved back: the
    export is consistent and anchored by the checkpoint at seq 3, but the file knows seq 7."""
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_events WHERE seq >= 7",
           "DELETE FROM audit_checkpoints WHERE seq >= 7",
           "UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_events WHERE seq = 6)")
    path = tmp_path / "truncated.jsonl"
    assert export_to(audit_db, path, signing_key, checkpoint_file) == 6
    alone = verify_module(path, pem)  # a consistent, re-anchored export of the cut chain
    assert alone.returncode == 0 and "closing checkpoint at seq 6" in alone.stdout
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("BROKEN at seq 7: checkpoint at seq 7 (")
    assert "lies beyond the last event 6: event 7 removed" in result.stdout
    # signatures are what make it proof, but the mismatch shows even without a key
    assert verify_module(path, checkpoints=[checkpoint_file]).stdout.startswith(
        "BROKEN at seq 7")


def test_export_older_than_a_later_checkpoint_is_intact_with_a_note(
        exported, audit_db, signing_key, checkpoint_file):
    path, pem, _document = exported
    append_events(audit_db, 2)
    with audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("INTACT: 9 events")
    assert "NOTE: the checkpoint file(s) hold 1 checkpoint(s) signed after this export " \
           "was made" in result.stdout
    assert "the newest at seq 12" in result.stdout and "WARNING" not in result.stdout
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
    # (the export's closing one at seq 9)
    (lambda line: line.replace(b'"seq":', b'"seq": '), 10, "not in canonical form"),
    (lambda line: line[:40], 10, "not canonical JSON"),
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


def test_every_problem_is_listed_lowest_seq_first(exported, audit_db, signing_key,
                                                  checkpoint_file, tmp_path):
    _path, pem, _document = exported
    tamper(audit_db.engine, "DELETE FROM audit_checkpoints")
    rewrite_chain_from(audit_db.engine, 2, new_actor="mallory")
    path = tmp_path / "rewritten.jsonl"
    export_to(audit_db, path, signing_key, checkpoint_file)
    result = verify_module(path, pem, checkpoints=[checkpoint_file])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("BROKEN at seq 1: checkpoint at seq 3 ")
    assert lines[1].startswith("also at seq 1: checkpoint at seq 7 ")


def cut_at_checkpoint(path, tmp_path, export_format: str | None = None):
    """The export cut at its routine checkpoint over event 7, with header re-dated to that
    checkpoint's signed time: every line authentic, the tail (events 8, 9) gone."""
    lines = lines_of(path)
    header = json.loads(lines[0])
    at_seven = json.loads(lines[11])["checkpoint"]
    assert at_seven["seq"] == 7 and at_seven["purpose"] == "routine"
    header["exported_at"] = at_seven["at"]
    header["head"] = {"hash": at_seven["hash"], "seq": 7}
    if export_format:
        header["format"] = export_format
    cut = tmp_path / "cut-at-7.jsonl"
    cut.write_bytes(canonical_bytes(header) + b"\n" + b"".join(lines[1:8] + lines[10:12]))
    return cut


@pytest.mark.parametrize("export_format", [None, "qms-audit-export/2", "qms-audit-export/1"])
def test_an_export_cut_at_an_earlier_routine_checkpoint_is_unanchored(
        exported, tmp_path, export_format):
    """Issue 9: only a checkpoint signed to close an export (purpose "export") proves that
    the export was complete on its date; one cut at a routine checkpoint, every line of it
    authentic, is UNANCHORED; relabelled as an older format it is BROKEN (its checkpoints
    name members that format predates)."""
    path, pem, _document = exported
    cut = cut_at_checkpoint(path, tmp_path, export_format)
    if export_format == "qms-audit-export/1":
        lines = lines_of(cut)
        header = json.loads(lines[0])
        del header["site"]
        cut.write_bytes(canonical_bytes(header) + b"\n" + b"".join(lines[1:]))
    result = verify_module(cut, pem)
    assert result.returncode == 1, result.stdout + result.stderr
    if export_format:
        assert result.stdout.startswith("BROKEN at seq 1: "), result.stdout
        assert "the header was relabelled to an older format" in result.stdout
        return
    assert result.stdout.startswith("UNANCHORED: "), result.stdout
    assert ("the checkpoint at the last event (seq 7, signed " in result.stdout
            and "was not signed to close an export (purpose routine, not export)"
            in result.stdout), result.stdout


def test_the_closing_checkpoint_must_be_the_last_line(exported, tmp_path):
    path, pem, _document = exported
    lines = lines_of(path)
    moved = tmp_path / "moved.jsonl"
    moved.write_bytes(b"".join(lines[:10] + [lines[12], lines[10], lines[11]]))
    result = verify_module(moved, pem)
    assert result.returncode == 1 and result.stdout.startswith("UNANCHORED: "), result.stdout
    assert "the export's closing checkpoint is not its last line" in result.stdout


def test_the_closing_checkpoint_is_marked_and_dated_by_the_export(exported):
    path, _pem, _document = exported
    lines = [json.loads(line) for line in lines_of(path)]
    header, closing = lines[0], lines[-1]["checkpoint"]
    assert header["format"] == "qms-audit-export/3"
    assert (closing["purpose"], closing["at"]) == ("export", header["exported_at"])
    assert {line["checkpoint"]["purpose"] for line in lines[10:-1]} == {"routine"}


def legacy_checkpoint(database, signing_key, checkpoint_file, at: str) -> bytes:
    """A checkpoint as the version before purposes wrote it (row, event, file line): five
    members, no purpose. Returns its line."""
    from audit import trail
    from audit.canonical import canonical_text
    from audit.checkpoints import key_id
    from audit.schema import audit_checkpoints

    with database.unit_of_work() as session:
        connection = session.connection()
        top = trail.lock_head(connection)
        payload = {"at": at, "hash": top.hash, "key_id": key_id(signing_key.public_key()),
                   "seq": top.seq, "site": SITE}
        canonical = canonical_text(payload)
        signature = base64.b64encode(signing_key.sign(canonical.encode())).decode()
        connection.execute(audit_checkpoints.insert().values(
            seq=top.seq, hash=top.hash, at=at, key_id=payload["key_id"], signature=signature,
            canonical=canonical))
        trail.append(connection, actor="system", action="audit.checkpoint.signed",
                     data={key: payload[key] for key in ("hash", "key_id", "seq", "site")})
    line = canonical_bytes({"checkpoint": payload, "signature": signature})
    checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
    with open(checkpoint_file, "ab") as handle:
        handle.write(line + b"\n")
    return line


def test_an_export_of_format_2_still_verifies_with_a_note(audit_db, signing_key,
                                                         checkpoint_file, tmp_path):
    """An export written before closing checkpoints were marked: INTACT, and the verifier
    says what it does not prove."""
    from datetime import UTC, datetime, timedelta

    from audit.canonical import utc_timestamp
    from audit.trail import query_events

    append_events(audit_db, 3)
    now = datetime.now(UTC)
    first = legacy_checkpoint(audit_db, signing_key, checkpoint_file, utc_timestamp(now))
    append_events(audit_db, 2)
    exported_at = utc_timestamp(now + timedelta(seconds=5))
    closing = legacy_checkpoint(audit_db, signing_key, checkpoint_file, exported_at)
    with audit_db.reading() as session:
        events = [event for event in query_events(session, limit=1000) if event.seq <= 6]
    header = {"exported_at": exported_at, "format": "qms-audit-export/2",
              "head": {"hash": events[-1].hash, "seq": 6}, "site": SITE}
    old = tmp_path / "old-format.jsonl"
    old.write_bytes(canonical_bytes(header) + b"\n"
                    + b"".join(event.canonical.encode() + b"\n" for event in events)
                    + first + b"\n" + closing + b"\n")
    pem = tmp_path / "public.pem"
    pem.write_bytes(signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = verify_module(old, pem, checkpoints=[checkpoint_file])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("INTACT: 6 events")
    assert ("NOTE: qms-audit-export/2: the closing checkpoint is not marked as one"
            in result.stdout)
    assert f"not that they were the whole trail at {exported_at}" in result.stdout
    with audit_db.engine.connect() as connection:  # and the database accepts such rows
        from audit.verify import verify_chain
        assert verify_chain(connection, public_keys={
            json.loads(closing)["checkpoint"]["key_id"]: signing_key.public_key()},
            checkpoint_file=checkpoint_file, site=SITE).verdict == "INTACT"
