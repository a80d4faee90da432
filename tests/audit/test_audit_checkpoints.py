"""Server signing key and signed checkpoints."""
from __future__ import annotations

import base64
import json
import stat
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives import serialization

from audit import trail
from audit.canonical import canonical_bytes
from audit.checkpoints import (CHECKPOINT_ACTION, CheckpointFileError, key_id,
                               list_checkpoints, load_or_create_signing_key,
                               public_key_document, read_checkpoint_file, write_checkpoint)
from audit_test_support import SITE, append_events


def test_signing_key_is_created_private_and_reloaded(tmp_path):
    path = tmp_path / "instance" / "keys" / "audit.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_signing_key(path)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert again.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)


def test_key_id_and_public_key_document(signing_key):
    public = signing_key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(public) == sha256(raw).hexdigest()[:16]
    document = public_key_document(public)
    assert document["key_id"] == key_id(public)
    assert document["algorithm"] == "Ed25519"
    assert base64.b64decode(document["public_key_b64"]) == raw
    loaded = serialization.load_pem_public_key(document["public_key_pem"].encode())
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw


def test_no_checkpoint_for_an_empty_chain(audit_db, signing_key, checkpoint_file):
    with audit_db.unit_of_work() as session:
        assert write_checkpoint(session, signing_key=signing_key,
                                file_path=checkpoint_file, site=SITE) is None
    assert not checkpoint_file.exists()


def test_checkpoint_row_event_and_file_line(audit_db, signing_key, checkpoint_file):
    events = append_events(audit_db, 3)
    with audit_db.unit_of_work() as session:
        checkpoint = write_checkpoint(session, signing_key=signing_key,
                                      file_path=checkpoint_file, site=SITE, actor="qa.admin")
    assert (checkpoint.seq, checkpoint.hash) == (3, events[-1].hash)
    payload = {"at": checkpoint.at, "hash": checkpoint.hash, "key_id": checkpoint.key_id,
               "purpose": "routine", "seq": 3, "site": SITE}
    assert checkpoint.canonical.encode() == canonical_bytes(payload)
    signing_key.public_key().verify(base64.b64decode(checkpoint.signature),
                                    canonical_bytes(payload))
    with audit_db.reading() as session:
        [stored] = list_checkpoints(session)
        [event] = trail.query_events(session, action=CHECKPOINT_ACTION)
    assert stored.canonical == checkpoint.canonical and stored.signature == checkpoint.signature
    assert (event.seq, event.actor) == (4, "qa.admin")
    assert event.data == {"hash": checkpoint.hash, "key_id": checkpoint.key_id,
                          "purpose": "routine", "seq": 3, "site": SITE}
    assert (stored.site, stored.purpose) == (SITE, "routine")
    line = checkpoint_file.read_text(encoding="utf-8")
    assert line == json.dumps({"checkpoint": payload, "signature": checkpoint.signature},
                              sort_keys=True, separators=(",", ":")) + "\n"
    [from_file] = read_checkpoint_file(checkpoint_file)
    assert (from_file.canonical, from_file.signature) == (checkpoint.canonical,
                                                          checkpoint.signature)


def test_checkpoints_accumulate_in_the_file(audit_db, signing_key, checkpoint_file):
    for _ in range(3):
        append_events(audit_db, 2)
        with audit_db.unit_of_work() as session:
            write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    assert [cp.seq for cp in read_checkpoint_file(checkpoint_file)] == [2, 5, 8]
    with audit_db.reading() as session:
        assert [cp.seq for cp in list_checkpoints(session)] == [2, 5, 8]


def test_checkpoint_refused_after_appends_in_the_same_transaction(audit_db, signing_key,
                                                                  checkpoint_file):
    with pytest.raises(trail.AuditError, match="without earlier appends"):
        with audit_db.unit_of_work() as session:
            trail.append(session, actor="alice", action="test.item.created", data={})
            write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
    assert not checkpoint_file.exists()


def test_rolled_back_checkpoint_leaves_a_true_file_line(audit_db, signing_key,
                                                        checkpoint_file, public_keys):
    from audit.verify import verify_chain
    append_events(audit_db, 2)
    with pytest.raises(RuntimeError):
        with audit_db.unit_of_work() as session:
            write_checkpoint(session, signing_key=signing_key, file_path=checkpoint_file, site=SITE)
            raise RuntimeError("the commit never happens")
    assert len(read_checkpoint_file(checkpoint_file)) == 1
    append_events(audit_db, 1)
    with audit_db.reading() as session:
        result = verify_chain(session, public_keys=public_keys, checkpoint_file=checkpoint_file)
    assert result.ok and result.checkpoints_checked == 1


@pytest.mark.parametrize("content, error", [
    (b'{"checkpoint": {"seq": 1}, "signature": "x"}\n', "unexpected keys"),
    (b"not json\n", "line 1"),
    (b'{"checkpoint":{"at":"a","hash":"h","key_id":"k","seq":1.5},"signature":"s"}\n',
     "integer"),
    (b'{"checkpoint":{"at":"a","hash":"h","key_id":"k","seq":1},"signature":"s"}',
     "incomplete"),
    (b'{"checkpoint":{"at":"a","hash":"h","key_id":"k","purpose":"closing","seq":1,'
     b'"site":"s"},"signature":"s"}\n', "purpose"),
])
def test_malformed_checkpoint_files_are_reported(tmp_path, content, error):
    path = tmp_path / "checkpoints.jsonl"
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError, match=error):
        read_checkpoint_file(path)
