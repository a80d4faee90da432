"""docs/audit-trail-format.md stays true: its worked example is rebuilt byte for byte, and
its independent recipe really verifies an export."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import trail
from audit.canonical import canonical_bytes
from audit.checkpoints import public_key_document, write_checkpoint
from audit.export import export_jsonl
from audit_test_support import ROOT, run_python

DOC = (ROOT / "docs" / "audit-trail-format.md").read_text(encoding="utf-8")
EXAMPLE_SITE = "site-example"


def example_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        sha256(b"qms audit-trail-format example key").digest())


def build_example(database, checkpoint_file):
    """The chain of section 6: two deviation events and a checkpoint."""
    with database.unit_of_work() as session:
        first = trail.append(session, actor="insp.müller", action="deviation.record.created",
                             data={"version": 1, "before": {}, "after": {
                                 "title": "Label printer jam", "severity": "minor",
                                 "quantity": "12.30"}},
                             entity=("deviation", "DEV-2026-00001"),
                             at=datetime(2026, 3, 2, 9, 15, 0, 123456, tzinfo=UTC))
    with database.unit_of_work() as session:
        second = trail.append(session, actor="qa.schmidt", action="deviation.record.updated",
                              data={"version": 2, "before": {"severity": "minor"},
                                    "after": {"severity": "major"}},
                              entity=("deviation", "DEV-2026-00001"),
                              reason="Affects a released lot",
                              at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    with database.unit_of_work() as session:
        checkpoint = write_checkpoint(session, signing_key=example_key(),
                                      file_path=checkpoint_file, site=EXAMPLE_SITE,
                                      at=datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    with database.reading() as session:
        [third] = trail.query_events(session, seq_from=3)
    return [first, second, third], checkpoint


def export_example(database, checkpoint_file, out):
    """The export of section 6, closed by a checkpoint signed at 12:00 over event 3."""
    with database.unit_of_work() as session:
        closing = write_checkpoint(session, signing_key=example_key(),
                                   file_path=checkpoint_file, site=EXAMPLE_SITE,
                                   at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC), purpose="export")
    with database.reading() as session:
        export_jsonl(session, out, closing=closing)
    return closing


def test_worked_example_is_reproduced_byte_for_byte(audit_db, checkpoint_file, tmp_path):
    events, checkpoint = build_example(audit_db, checkpoint_file)
    with open(tmp_path / "export.jsonl", "w", encoding="utf-8", newline="\n") as out:
        closing = export_example(audit_db, checkpoint_file, out)
    header = (tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert f"`{header}`" in DOC
    assert f"\n{closing.line()}\n" in DOC
    for event in events:
        assert f"\n{event.canonical}\n" in DOC
        assert f"hash `{event.hash}`" in DOC
    assert f"Event 1 ({len(events[0].canonical.encode())} bytes" in DOC
    assert f"Event 2 ({len(events[1].canonical.encode())} bytes" in DOC
    assert f"\n{checkpoint.canonical}\n" in DOC
    assert f"`{checkpoint.signature}`" in DOC
    assert f"\n{checkpoint.line()}\n" in DOC
    document = public_key_document(example_key().public_key())
    for value in document.values():
        assert value.replace("\n", "\\n") in DOC


def test_canonical_encoding_example():
    value = {"b": [1, True, None], "a": {"z": "Gru\u0308\u00dfe\n", "y": -3}}
    encoded = canonical_bytes(value)
    assert f"\n{encoded.decode()}\n" in DOC
    assert f"the {len(encoded)} bytes of" in DOC


def recipe() -> str:
    section = DOC.split("## 7.", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_recipe_is_25_lines_and_verifies_an_export(audit_db, checkpoint_file, tmp_path):
    code = recipe()
    assert len(code.splitlines()) <= 25
    script = tmp_path / "recipe.py"
    script.write_text(code, encoding="utf-8")
    build_example(audit_db, checkpoint_file)
    export = tmp_path / "export.jsonl"
    with open(export, "w", encoding="utf-8", newline="\n") as out:
        export_example(audit_db, checkpoint_file, out)
    pem = tmp_path / "key.pem"
    pem.write_bytes(example_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = run_python(str(script), str(export), str(pem), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("intact: 3 events, head 1d380c72")
    lines = export.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"  # cut at the routine checkpoint over event 2
    cut.write_bytes(b"".join(lines[:3] + lines[4:5]))
    assert run_python(str(script), str(cut), str(pem), cwd=tmp_path).returncode != 0
    export.write_bytes(export.read_bytes().replace(b'"severity":"major"', b'"severity":"minor"'))
    assert run_python(str(script), str(export), str(pem), cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("word", ["RFC 8785", "NFC", "lowercase", "2^53", "Ed25519",
                                  "first 16 hex digits", "qms-audit-export/3", "site",
                                  "purpose"])
def test_format_rules_are_stated(word):
    assert word in DOC
