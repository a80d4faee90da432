"""`qms audit set-site-id` and a key swapped in the instance folder, as real subprocesses
(issue 9 points 5 and 8): a site id change is an audited event that both verifiers follow;
a key that no rotation handed over is BROKEN, whatever public keys lie beside it."""
from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from audit.checkpoints import key_id, private_pem, public_key_document
from qms.db import make_engine
from test_audit_cli import instance_of, qms_public_key, verify_export
from test_cli import qms  # noqa: F401  (the fixture: an initialised instance)

REASON = "validation copy of production, restored 2026-05-04 (CC-2026-0042)"


def last_events(database_url: str, count: int) -> list:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT actor, action, reason, canonical FROM audit_events "
                f"WHERE seq > (SELECT max(seq) - {count} FROM audit_events) ORDER BY seq")).all()
    finally:
        engine.dispose()


def test_set_site_id_records_the_change_and_both_verifiers_follow_it(qms, database_url,
                                                                     tmp_path):
    site_file = instance_of(tmp_path) / "site_id"
    production = site_file.read_text().strip()
    assert qms("audit", "set-site-id", "site-copy", "--reason", " ").returncode == 1
    assert qms("audit", "set-site-id", "no spaces", "--reason", REASON).returncode == 1
    assert qms("audit", "set-site-id", production, "--reason", REASON).returncode == 1
    changed = qms("audit", "set-site-id", "site-copy", "--reason", REASON)
    assert changed.returncode == 0, changed.stderr
    assert f"{production} -> site-copy" in changed.stdout
    assert site_file.read_text().strip() == "site-copy"
    change, signed = last_events(database_url, 2)
    assert (change.actor, change.action, change.reason) == ("admin", "audit.site.changed",
                                                            REASON)
    assert json.loads(change.canonical)["data"] == {"new_site": "site-copy",
                                                    "old_site": production}
    assert json.loads(signed.canonical)["data"]["site"] == "site-copy"
    verified = qms("audit", "verify")  # production's inherited checkpoints still count
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert qms("audit", "checkpoint").returncode == 0
    export = tmp_path / "audit.jsonl"
    assert qms("audit", "export", "-o", str(export)).returncode == 0
    key = tmp_path / "public.json"
    key.write_text(qms_public_key(tmp_path))
    result = verify_export(export, "--public-key", str(key), "--checkpoints",
                           str(instance_of(tmp_path) / "audit-checkpoints.jsonl"))
    assert result.returncode == 0 and result.stdout.startswith("INTACT: "), result.stdout
    assert "site site-copy" in result.stdout
    as_production = verify_export(export, "--public-key", str(key), "--site", production)
    assert as_production.returncode == 1, as_production.stdout
    assert f"but this export's site is '{production}'" in as_production.stdout


def test_a_site_id_changed_without_the_command_is_refused_and_broken(qms, tmp_path):
    other = {"QMS_AUDIT_SITE_ID": "site-unrecorded"}
    refused = qms("audit", "checkpoint", extra_env=other)
    assert refused.returncode == 1
    assert "its audit trail says" in refused.stderr and "set-site-id" in refused.stderr
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    verified = qms("audit", "verify", extra_env=other)
    assert verified.returncode == 1 and "BROKEN" in verified.stderr, verified.stderr
    assert "not for this instance's site 'site-unrecorded'" in verified.stderr
    # the setting must agree with the id the command records
    mismatch = qms("audit", "set-site-id", "site-copy", "--reason", REASON, extra_env=other)
    assert mismatch.returncode == 1 and "set it to site-copy" in mismatch.stderr
    agreed = qms("audit", "set-site-id", "site-unrecorded", "--reason", REASON,
                 extra_env=other)
    assert agreed.returncode == 0, agreed.stderr
    assert qms("audit", "verify", extra_env=other).returncode == 0


def test_a_lost_site_id_after_a_change_names_the_current_one(qms, tmp_path):
    assert qms("audit", "set-site-id", "site-copy", "--reason", REASON).returncode == 0
    (instance_of(tmp_path) / "site_id").unlink()
    lost = qms("db", "upgrade")
    assert lost.returncode == 1 and "the audit trail's site is site-copy" in lost.stderr


def test_a_key_swapped_in_with_a_planted_retired_key_is_broken(qms, tmp_path):
    """Someone holding the instance folder replaces the signing key and files the old
    public key as "retired": the checkpoints of both verify, yet no rotation handed over."""
    keys = instance_of(tmp_path) / "keys"
    old_public = json.loads(qms_public_key(tmp_path))
    retired = keys / "audit-ed25519-retired"
    retired.mkdir()
    (retired / f"{old_public['key_id']}.pem").write_text(old_public["public_key_pem"])
    swapped = Ed25519PrivateKey.generate()
    (keys / "audit-ed25519.pem").write_bytes(private_pem(swapped))
    assert qms("audit", "checkpoint").returncode == 0  # signing itself is not refused
    verified = qms("audit", "verify")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"signed with key {key_id(swapped.public_key())}, which no audit.key.rotated " \
           "event introduces" in verified.stderr
    export = tmp_path / "audit.jsonl"
    refused = qms("audit", "export", "-o", str(export))
    assert refused.returncode == 1 and "BROKEN" in refused.stderr  # never vouched for


def test_an_export_across_a_rotation_verifies_with_the_old_and_new_public_keys(
        qms, tmp_path):
    old = tmp_path / "old.json"
    old.write_text(qms_public_key(tmp_path))
    assert qms("audit", "rotate-key", "--reason", "annual rotation").returncode == 0
    new = tmp_path / "new.json"
    new.write_text(qms_public_key(tmp_path))
    export = tmp_path / "audit.jsonl"
    assert qms("audit", "export", "-o", str(export)).returncode == 0
    files = ("--checkpoints", str(instance_of(tmp_path) / "audit-checkpoints.jsonl"))
    both = verify_export(export, "--public-key", str(old), "--public-key", str(new), *files)
    assert both.returncode == 0 and both.stdout.startswith("INTACT: "), both.stdout
    # a key the auditor is handed beside them changes nothing unless the chain names it
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(public_key_document(
        Ed25519PrivateKey.generate().public_key())))
    assert verify_export(export, "--public-key", str(old), "--public-key", str(new),
                         "--public-key", str(stranger), *files).returncode == 0
    only_new = verify_export(export, "--public-key", str(new), *files)
    assert only_new.returncode == 1, only_new.stdout
