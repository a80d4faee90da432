"""The `qms` command line, run as a real subprocess against a real database."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from audit.guards import drop_guards

ADMIN_PASSWORD = "initial operator passphrase"


@pytest.fixture
def qms(test_database, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QMS_")}
    env.update(QMS_INSTANCE_PATH=str(tmp_path / "instance"), QMS_DATABASE_URL=test_database.url,
               QMS_DATABASE_OWNER_URL=test_database.owner_url,
               QMS_ADMIN_PASSWORD=ADMIN_PASSWORD, QMS_OPERATOR="admin",
               QMS_OPERATOR_PASSWORD=ADMIN_PASSWORD, QMS_SECURITY_ARGON2_MEMORY_KIB="8192",
               QMS_SECURITY_KEY_WRAP_SCRYPT_LOG_N="10")

    def run(*args: str, stdin: str = "", extra_env: dict | None = None
            ) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qms", *args], input=stdin,
                              env=env | (extra_env or {}), capture_output=True, text=True,
                              timeout=120)
    run("init").check_returncode()
    return run


def test_init_is_idempotent_and_creates_the_admin(qms, tmp_path):
    again = qms("init")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600
    listing = qms("user", "list").stdout
    assert "admin" in listing and "System Administrator" in listing


def test_demo_data_is_refused_on_an_instance_in_use(qms):
    """Demo accounts sign with a published password: `init --demo` on an instance that
    already has its users would plant signers nobody administered."""
    refused = qms("init", "--demo")
    assert refused.returncode == 1 and "--demo only creates a new instance" in refused.stderr
    listing = qms("user", "list").stdout
    assert "qa.approver" not in listing and "admin" in listing


def test_user_create_reads_the_temporary_password_from_stdin(qms):
    created = qms("user", "create", "alice", "--name", "Alice Able", "--role", "qa_approver",
                  "--role", "auditor", "--password-stdin", stdin="temporary password 1\n")
    assert created.returncode == 0, created.stderr
    duplicate = qms("user", "create", "alice", "--name", "Alice Again", "--role", "auditor",
                    "--password-stdin", stdin="temporary password 1\n")
    assert duplicate.returncode == 1 and "never reused" in duplicate.stderr
    bad_role = qms("user", "create", "bob", "--name", "Bob", "--role", "wizard",
                   "--password-stdin", stdin="temporary password 1\n")
    assert bad_role.returncode == 1 and "unknown role" in bad_role.stderr
    assert "bob" not in qms("user", "list").stdout


def test_service_token_works_against_the_api(qms, database_url, tmp_path):
    assert qms("user", "create", "erp1", "--name", "SAP PI", "--role", "erp", "--service").returncode == 0
    issued = qms("token", "create", "erp1", "--name", "feed")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    from qms.app import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": database_url})
    response = app.test_client().get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()[0]["kind"] == "service"
    app.extensions["qms"].db.dispose()
    person = qms("token", "create", "admin")
    assert person.returncode == 1 and "not a service account" in person.stderr
    listed = qms("token", "list", "erp1").stdout
    assert token[:12] in listed and token not in listed and "live" in listed
    token_id = listed.split()[0]
    assert qms("token", "revoke", token_id, "--reason", "leaked in a ticket").returncode == 0
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": database_url})
    response = app.test_client().get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    app.extensions["qms"].db.dispose()
    assert qms("token", "revoke", token_id, "--reason", "again").returncode == 1


def test_audit_verify_export_and_tamper(qms, owner_engine, tmp_path):
    assert qms("audit", "checkpoint").returncode == 0
    intact = qms("audit", "verify")
    assert intact.returncode == 0 and "intact" in intact.stdout
    export = tmp_path / "audit.jsonl"
    assert qms("audit", "export", "-o", str(export)).returncode == 0
    key = tmp_path / "instance" / "keys" / "audit-ed25519.pem"
    public = tmp_path / "public.pem"
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    checked = subprocess.run([sys.executable, "-m", "audit.verify_export", str(export),
                              "--public-key", str(public), "--checkpoints",
                              str(tmp_path / "instance" / "audit-checkpoints.jsonl")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("INTACT: ") and "WARNING" not in checked.stdout
    unanchored = subprocess.run([sys.executable, "-m", "audit.verify_export", str(export)],
                                capture_output=True, text=True)
    assert unanchored.returncode == 1 and unanchored.stdout.startswith("UNANCHORED: ")
    _tamper_actor(owner_engine, seq=1)
    broken = qms("audit", "verify")
    assert broken.returncode == 1 and "seq 1" in broken.stderr


def _tamper_actor(owner_engine, seq: int) -> None:
    """As an attacker who owns the database: guards dropped, an event rewritten."""
    with owner_engine.begin() as connection:
        drop_guards(connection)
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = :seq"),
                           {"seq": seq})


def test_bad_cli_input_exits_non_zero_with_a_message(qms):
    no_password = qms("user", "create", "carl", "--name", "Carl", "--role", "auditor")
    assert no_password.returncode == 1 and "--password-stdin" in no_password.stderr
    unknown = qms("user", "deactivate", "nobody", "--reason", "x")
    assert unknown.returncode == 1 and "no user" in unknown.stderr
