"""`qms audit verify|export|checkpoint|rotate-key` as real subprocesses (issue 9 points 5, 6,
8): an unanchored chain fails, an export verifies stand-alone, a missing key is an error and
never silently re-created, and a key rotation is audited with old checkpoints still valid."""
from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import text

from audit.guards import drop_guards
from qms.db import make_engine
from test_cli import qms  # noqa: F401  (the fixture: an initialised instance)


def instance_of(tmp_path):
    return tmp_path / "instance"


def run_sql(database_url: str, *statements: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            drop_guards(connection)
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def verify_export(export, *options):
    return subprocess.run([sys.executable, "-m", "audit.verify_export", str(export), *options],
                          capture_output=True, text=True)


def test_verify_fails_unanchored_when_no_checkpoint_vouches(qms, test_database, tmp_path):
    assert qms("audit", "verify").returncode == 0  # qms init anchored the new instance
    # as the database's owner (on PostgreSQL the app role cannot switch the guards off)
    run_sql(test_database.owner_url or test_database.url, "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_events WHERE action = 'audit.checkpoint.signed'",
            "UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_events "
            "WHERE seq = 1)")  # a consistent chain, as if never checkpointed
    (instance_of(tmp_path) / "audit-checkpoints.jsonl").unlink()
    result = qms("audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNANCHORED" in result.stderr and "intact" not in result.stdout


def test_export_is_closed_by_a_checkpoint_and_verifies_stand_alone(qms, tmp_path):
    export = tmp_path / "audit.jsonl"
    made = qms("audit", "export", "-o", str(export))
    assert made.returncode == 0, made.stderr
    lines = export.read_text(encoding="utf-8").splitlines()
    header, closing = json.loads(lines[0]), json.loads(lines[-1])["checkpoint"]
    site = (instance_of(tmp_path) / "site_id").read_text().strip()
    assert header["site"] == closing["site"] == site and site.startswith("site-")
    assert (closing["seq"], closing["at"]) == (header["head"]["seq"], header["exported_at"])
    assert (header["format"], closing["purpose"]) == ("qms-audit-export/3", "export")
    key = tmp_path / "public.json"
    key.write_text(qms_public_key(tmp_path))
    result = verify_export(export, "--public-key", str(key), "--checkpoints",
                           str(instance_of(tmp_path) / "audit-checkpoints.jsonl"))
    assert result.returncode == 0 and result.stdout.startswith("INTACT: "), result.stdout
    other_site = verify_export(export, "--public-key", str(key), "--site", "site-production")
    assert other_site.returncode == 1 and "signed for site" in other_site.stdout
    assert qms("audit", "verify").returncode == 0


def qms_public_key(tmp_path) -> str:
    from cryptography.hazmat.primitives import serialization

    from audit.checkpoints import public_key_document

    pem = (instance_of(tmp_path) / "keys" / "audit-ed25519.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    return json.dumps(public_key_document(private.public_key()))


def test_a_missing_key_is_an_error_and_is_not_re_created(qms, tmp_path):
    key = instance_of(tmp_path) / "keys" / "audit-ed25519.pem"
    key.unlink()
    for command in (("audit", "checkpoint"), ("audit", "verify"),
                    ("audit", "export", "-o", str(tmp_path / "x.jsonl"))):
        result = qms(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "audit signing key" in result.stderr and "is missing" in result.stderr
        assert not key.exists()


def test_rotate_key_is_audited_and_old_checkpoints_still_verify(qms, database_url, tmp_path):
    key = instance_of(tmp_path) / "keys" / "audit-ed25519.pem"
    before = key.read_bytes()
    assert qms("audit", "rotate-key", "--reason", "  ").returncode == 1
    assert key.read_bytes() == before
    rotated = qms("audit", "rotate-key", "--reason", "annual key rotation per SOP-IT-007")
    assert rotated.returncode == 0, rotated.stderr
    assert key.read_bytes() != before
    retired = list((instance_of(tmp_path) / "keys" / "audit-ed25519-retired").glob("*.pem"))
    assert len(retired) == 1
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT actor, action, reason, canonical FROM audit_events "
                "WHERE seq > (SELECT max(seq) - 3 FROM audit_events) ORDER BY seq")).all()
            key_ids = connection.execute(text(
                "SELECT DISTINCT key_id FROM audit_checkpoints")).scalars().all()
    finally:
        engine.dispose()
    # the rotation, the old key's checkpoint over it, the new key's first checkpoint
    assert [row.action for row in rows] == ["audit.key.rotated", "audit.checkpoint.signed",
                                            "audit.checkpoint.signed"]
    # the authenticated administrator, never `system`, rotated the key and signed both
    assert [row.actor for row in rows] == ["admin", "admin", "admin"]
    rotation = rows[0]
    handed_over, first = (json.loads(row.canonical)["data"] for row in rows[1:])
    assert rotation.reason == "annual key rotation per SOP-IT-007"
    data = json.loads(rotation.canonical)["data"]
    assert data["old_key_id"] == retired[0].stem != data["new_key_id"]
    assert set(key_ids) == {data["old_key_id"], data["new_key_id"]}
    assert (handed_over["key_id"], first["key_id"]) == (data["old_key_id"], data["new_key_id"])
    verified = qms("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # the trust root recorded at init is the first key, not the current one
    root = (instance_of(tmp_path) / "audit_root_key_id").read_text().strip()
    assert root == data["old_key_id"]
    assert f"trust root: key {root} (pinned" in verified.stdout


def test_verify_refuses_a_first_checkpoint_not_signed_by_the_recorded_root(qms, tmp_path):
    """A trust root recorded at `qms init` (or set outside the instance folder) that the
    first checkpoint's key is not: BROKEN, whatever keys the folder holds."""
    (instance_of(tmp_path) / "audit_root_key_id").write_text("0123456789abcdef\n")
    result = qms("audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the trusted first key is 0123456789abcdef" in result.stdout + result.stderr


def test_init_does_not_replace_a_lost_key_of_a_signed_trail(qms, tmp_path):
    key = instance_of(tmp_path) / "keys" / "audit-ed25519.pem"
    key.unlink()
    again = qms("init")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "is missing but this instance has signed checkpoints" in again.stderr
    assert not key.exists()


def test_retired_public_keys_are_served_by_key_id(qms, database_url, tmp_path):
    from qms.app import create_app

    old = json.loads(qms_public_key(tmp_path))["key_id"]
    assert qms("audit", "rotate-key", "--reason", "suspected key exposure").returncode == 0
    assert qms("user", "create", "svc.audit", "--name", "Audit Robot", "--role", "auditor",
               "--service").returncode == 0
    token = qms("token", "create", "svc.audit").stdout.strip()
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance_of(tmp_path)),
                      "DATABASE_URL": database_url})
    try:
        client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
        url = "/api/v1/audit/public-key"
        current = client.get(url, headers=headers).get_json()["key_id"]
        retired = client.get(f"{url}?key_id={old}", headers=headers)
        assert retired.status_code == 200 and retired.get_json()["key_id"] == old != current
        assert client.get(f"{url}?key_id=0123456789abcdef", headers=headers).status_code == 404
        invalid = client.get(f"{url}?key_id=nope", headers=headers)
        assert invalid.status_code == 422 and "key_id" in invalid.get_json()["errors"]
    finally:
        app.extensions["qms"].db.dispose()


def test_an_export_never_vouches_for_a_broken_chain(qms, test_database, tmp_path):
    """A queryable column edited as the owner: the database says BROKEN, so no closing
    checkpoint is signed and nothing is exported (the stand-alone verifier, which sees only
    the canonical text, would otherwise call the export INTACT)."""
    run_sql(test_database.owner_url or test_database.url,
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    checkpoints_before = checkpoint_count(test_database.url)
    export = tmp_path / "audit.jsonl"
    refused = qms("audit", "export", "-o", str(export))
    assert refused.returncode == 1 and "BROKEN at seq 1" in refused.stderr, refused.stderr
    assert not export.exists()
    assert checkpoint_count(test_database.url) == checkpoints_before


def checkpoint_count(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one()
    finally:
        engine.dispose()


def test_an_upgraded_instance_gets_its_site_id(qms, test_database, tmp_path):
    """An instance from before checkpoints named their site: `qms db upgrade` names it, so
    the scheduler and `qms audit checkpoint` go on signing. A lost site id of an instance
    whose checkpoints name one is refused instead (a new one would split the trail)."""
    site_file = instance_of(tmp_path) / "site_id"
    site = site_file.read_text().strip()
    site_file.unlink()
    lost = qms("db", "upgrade")
    assert lost.returncode == 1 and site in lost.stderr and not site_file.exists()
    run_sql(test_database.owner_url or test_database.url,  # as before sites existed
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_events WHERE action = 'audit.checkpoint.signed'",
            "UPDATE audit_head SET seq = (SELECT max(seq) FROM audit_events), "
            "hash = (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1)")
    (instance_of(tmp_path) / "audit-checkpoints.jsonl").unlink()
    upgraded = qms("db", "upgrade")
    assert upgraded.returncode == 0 and "audit site id" in upgraded.stdout, upgraded.stderr
    assert site_file.read_text().strip().startswith("site-")
    assert qms("audit", "checkpoint").returncode == 0
    assert qms("audit", "verify").returncode == 0
