"""Export and the stand-alone verifier, run the way an auditor runs it."""
from __future__ import annotations

import json
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpoints import EXPORT, public_key_document, write_checkpoint
from audit.export import EXPORT_FORMAT, export_jsonl
from audit_test_support import SITE, append_events
from audit_test_support import ROOT, run_python

VERIFIER = ROOT / "audit" / "verify_export.py"


@pytest.fixture
def exported(audit_db, signing_key, checkpoint_file, tmp_path):
    """An export of 9 events with checkpoints at seq 3 and 7, and the key files."""
    append_events(audit_db, 3)
    with audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    append_events(audit_db, 3)
    with audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    append_events(audit_db, 1)
    path = tmp_path / "export.jsonl"
    progress = []
    assert export_to(audit_db, path, signing_key, checkpoint_file,
                     progress=progress.append) == 9
    assert progress == [9]
    public = signing_key.public_key()
    pem = tmp_path / "audit-public.pem"
    pem.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    document = tmp_path / "audit-public.json"
    document.write_text(json.dumps(public_key_document(public)), encoding="utf-8")
    return path, pem, document


def export_to(database, path, signing_key, checkpoint_file, progress=None) -> int:
    """What `qms audit export` does: sign and commit a closing checkpoint over the head,
    then export through it."""
    with database.unit_of_work() as session:
        closing = write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file,
                                   site=SITE, purpose=EXPORT)
    with database.reading() as session, open(path, "w", encoding="utf-8", newline="\n") as out:
        return export_jsonl(session, out, closing=closing, progress=progress)


def verifier_arguments(keys=(), checkpoints=(), options=()) -> list[str]:
    return ([argument for key in keys for argument in ("--public-key", str(key))]
            + [argument for file in checkpoints for argument in ("--checkpoints", str(file))]
            + list(options))


def verify_module(export, *keys, checkpoints=(), options=()):
    return run_python("-m", "audit.verify_export", str(export),
                      *verifier_arguments(keys, checkpoints, options))


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_export_layout(exported, audit_db):
    path, _pem, _document = exported
    lines = [json.loads(line) for line in lines_of(path)]
    header, events, checkpoints = lines[0], lines[1:10], lines[10:]
    assert header["format"] == EXPORT_FORMAT
    assert header["head"]["seq"] == 9 == events[-1]["seq"]
    assert [event["seq"] for event in events] == list(range(1, 10))
    # ... and last the closing checkpoint, signed at export time over the last event
    assert [line["checkpoint"]["seq"] for line in checkpoints] == [3, 7, 9]
    closing = checkpoints[-1]["checkpoint"]
    assert (header["exported_at"], header["head"]["hash"]) == (closing["at"], closing["hash"])
    assert header["site"] == closing["site"] == SITE
    with audit_db.reading() as session:
        stored = session.connection().exec_driver_sql(
            "SELECT canonical FROM audit_events WHERE seq <= 9 ORDER BY seq").scalars().all()
    assert lines_of(path)[1:10] == [f"{text}\n".encode() for text in stored]


def test_intact_export_verifies_as_a_module(exported, checkpoint_file):
    path, pem, document = exported
    for key in (pem, document):
        result = verify_module(path, key)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("INTACT: 9 events")
        assert "3 checkpoint(s) match the chain, signatures valid" in result.stdout
        assert "the export's closing checkpoint at seq 9" in result.stdout
        assert f"site {SITE}" in result.stdout
        assert "NOTE: no --checkpoints file given" in result.stdout
    anchored = verify_module(path, pem, checkpoints=[checkpoint_file])
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    assert "(3 of them in the checkpoint file(s))" in anchored.stdout
    assert "NOTE" not in anchored.stdout and "WARNING" not in anchored.stdout


def test_intact_export_verifies_with_the_file_copied_alone(exported, checkpoint_file,
                                                         tmp_path):
    path, _pem, document = exported
    alone = tmp_path / "auditor"
    alone.mkdir()
    shutil.copy(VERIFIER, alone / "verify_export.py")
    arguments = ["verify_export.py", str(path),
                 *verifier_arguments([document], [checkpoint_file])]
    result = run_python(*arguments, cwd=alone, python_options=("-I",))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("INTACT: 9 events")
    assert "signatures valid" in result.stdout
    # without site-packages there is no cryptography: the chain is checked, but nothing
    # anchors it, so no INTACT (unless the auditor explicitly accepts that)
    bare = run_python(*arguments, cwd=alone, python_options=("-I", "-S"))
    assert bare.returncode == 1, bare.stdout + bare.stderr
    assert bare.stdout.startswith("UNANCHORED: the chain is internally consistent")
    assert "cryptography" in bare.stdout and "NOT checked" in bare.stdout
    accepted = run_python(*arguments, "--allow-unanchored", cwd=alone,
                          python_options=("-I", "-S"))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.startswith("UNANCHORED") and "--allow-unanchored" in accepted.stdout


def edit_line(path, number: int, old: bytes, new: bytes) -> None:
    lines = lines_of(path)
    assert old in lines[number]
    lines[number] = lines[number].replace(old, new, 1)
    path.write_bytes(b"".join(lines))


def test_edited_event_is_broken(exported):
    path, pem, _document = exported
    edit_line(path, 5, b'"qty":"12.30"', b'"qty":"12.31"')
    result = verify_module(path, pem)
    assert result.returncode == 1
    assert result.stdout.startswith("BROKEN at seq 5: event 5 hashes to")


@pytest.mark.parametrize("change, seq, why", [
    (lambda lines: lines[:4] + lines[5:], 4, "expected seq 4"),          # event removed
    (lambda lines: lines[:4] + [lines[5], lines[4]] + lines[6:], 4, "expected seq 4"),
    (lambda lines: lines[:1] + lines[2:], 1, "expected seq 1"),
    (lambda lines: [lines[0].replace(b'"format"', b'"fmt"')] + lines[1:], 1, "header"),
    (lambda lines: lines[:3] + [lines[3].replace(b":", b": ", 1)] + lines[4:], 3,
     "canonical"),
    (lambda lines: lines[:-2] + [lines[-2].replace(b'"signature":"', b'"signature":"A')]
     + lines[-1:], 4, "does not verify"),
    (lambda lines: lines[:-1] + [lines[-1].replace(b'"signature":"', b'"signature":"A')], 8,
     "does not verify"),
    (lambda lines: lines[:-1] + [lines[2], lines[-1]], 10, "an event after the checkpoints"),
])
def test_tampered_exports_are_broken(exported, change, seq, why):
    path, pem, _document = exported
    path.write_bytes(b"".join(change(lines_of(path))))
    result = verify_module(path, pem)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith(f"BROKEN at seq {seq}"), result.stdout
    assert why in result.stdout


def test_truncated_tail_is_caught_by_the_checkpoint(exported):
    path, pem, _document = exported
    lines = lines_of(path)
    header = json.loads(lines[0])
    header["head"] = {"hash": _sha(lines[6]), "seq": 6}  # the attacker keeps it consistent
    new_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(new_header + b"".join(lines[1:7] + lines[10:]))
    result = verify_module(path, pem)
    assert result.returncode == 1
    assert "BROKEN at seq 7: checkpoint at seq 7" in result.stdout
    assert "event 7 removed" in result.stdout


def test_rewritten_chain_is_caught_by_signatures(exported, tmp_path):
    path, _pem, _document = exported
    stranger = Ed25519PrivateKey.generate().public_key()
    other_pem = tmp_path / "other.pem"
    other_pem.write_bytes(stranger.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = verify_module(path, other_pem)
    assert result.returncode == 1
    assert "BROKEN at seq 1" in result.stdout and "unknown key" in result.stdout


def test_usage_errors_exit_2(exported, tmp_path):
    path, pem, _document = exported
    assert verify_module(tmp_path / "missing.jsonl", pem).returncode == 2
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    assert verify_module(path, garbage).returncode == 2
    missing_file = verify_module(path, pem, checkpoints=[tmp_path / "missing-checkpoints"])
    assert missing_file.returncode == 2 and "checkpoint file" in missing_file.stderr
    assert run_python("-m", "audit.verify_export").returncode == 2
    assert verify_module(path, pem, options=["--no-such-option"]).returncode == 2


def _sha(line: bytes) -> str:
    from hashlib import sha256
    return sha256(line.rstrip(b"\n")).hexdigest()
