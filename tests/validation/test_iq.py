"""Installation qualification against a real instance on each database backend: a fresh
installation passes, and each kind of faulty installation fails naming its check."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from audit.guards import install_guards
from qms.db import Database
from validation.iq import iq_html, iq_text, run_iq


def run(app):
    with app.app_context():
        return run_iq()


def failed_ids(report) -> list[str]:
    return [check.id for check in report.failed()]


def test_fresh_instance_passes_every_check(installed):
    report = run(installed)
    assert report.passed, iq_text(report)
    assert [check.id for check in report.checks] == [f"IQ-{n:02d}" for n in range(1, 14)]
    assert all(check.detail for check in report.checks)


def test_iq_changes_nothing(installed, db_snapshot):
    before = db_snapshot()
    instance = Path(installed.instance_path)
    files = sorted(p.relative_to(instance) for p in instance.rglob("*"))
    run(installed)
    assert db_snapshot() == before
    assert sorted(p.relative_to(instance) for p in instance.rglob("*")) == files


def test_dropped_guard_trigger_fails_naming_the_trigger(installed, drop_event_update_guard):
    trigger = drop_event_update_guard()
    report = run(installed)
    assert failed_ids(report) == ["IQ-05"]
    assert trigger in report.failed()[0].detail


def test_disabled_postgresql_trigger_counts_as_missing(installed, backend, owner_engine):
    if backend != "postgresql":
        pytest.skip("SQLite triggers cannot be disabled")
    with owner_engine.begin() as connection:
        connection.execute(text("ALTER TABLE signatures DISABLE TRIGGER signatures_no_change"))
    report = run(installed)
    assert failed_ids(report) == ["IQ-05"]
    assert "signatures_no_change on signatures" in report.failed()[0].detail


@pytest.mark.parametrize("relative_path, check_id", [("secret_key", "IQ-06"),
                                                     ("keys/audit-ed25519.pem", "IQ-07")])
def test_key_file_readable_by_others_fails(installed, relative_path, check_id):
    (Path(installed.instance_path) / relative_path).chmod(0o644)
    report = run(installed)
    assert failed_ids(report) == [check_id]
    assert "mode 0644" in report.failed()[0].detail


def test_missing_audit_key_fails_and_is_not_created(app):
    app.extensions["qms"].audit_key_path.unlink()  # lost after `qms init` wrote it
    report = run(app)
    assert failed_ids(report) == ["IQ-07", "IQ-12"]
    assert not app.extensions["qms"].audit_key_path.exists()


def test_missing_checkpoint_folder_fails(installed, monkeypatch, tmp_path):
    state = installed.extensions["qms"]
    monkeypatch.setattr(state, "checkpoint_file", tmp_path / "unmounted" / "checkpoints.jsonl")
    report = run(installed)
    assert failed_ids(report) == ["IQ-08"]
    assert "unmounted does not exist" in report.failed()[0].detail


def test_schema_behind_the_head_fails(installed, owner_engine):
    with owner_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002_audit_guards'"))
    report = run(installed)
    assert failed_ids(report) == ["IQ-04"]
    assert "0002_audit_guards" in report.failed()[0].detail


def test_tampered_audit_chain_fails(installed, make_user, drop_event_update_guard,
                                    owner_engine):
    make_user("ida.inspector", "inspector")
    drop_event_update_guard()
    with owner_engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"))
        install_guards(connection)  # a careful attacker puts the guard rails back
    report = run(installed)
    assert failed_ids(report) == ["IQ-12"]
    assert "BROKEN at seq 1" in report.failed()[0].detail


def test_testing_mode_fails_the_configuration_check(installed):
    installed.testing = True
    assert failed_ids(run(installed)) == ["IQ-09"]


def test_admin_with_a_signing_permission_fails(installed, monkeypatch):
    roles = installed.extensions["qms"].security.roles
    monkeypatch.setitem(roles.permissions, "admin",
                        roles.permissions["admin"] | {"document.approve"})
    report = run(installed)
    assert failed_ids(report) == ["IQ-11"]
    assert "document.approve" in report.failed()[0].detail


def test_unreachable_database_fails_its_checks_and_reports_the_rest(installed):
    state = installed.extensions["qms"]
    working = state.db
    state.db = Database(create_engine("sqlite:////nonexistent-folder/qms.sqlite3"))
    try:
        report = run(installed)
    finally:
        state.db.dispose()
        state.db = working
    assert {"IQ-03", "IQ-04", "IQ-05", "IQ-12"} <= set(failed_ids(report))
    assert {"IQ-01", "IQ-02", "IQ-06", "IQ-07"}.isdisjoint(failed_ids(report))
    assert "OperationalError" in report.failed()[0].detail


def test_text_and_html_reports_name_every_check(installed):
    report = run(installed)
    text_report = iq_text(report)
    page = iq_html(report)
    for number in range(1, 14):
        assert f"IQ-{number:02d}  PASS" in text_report
        assert f"IQ-{number:02d}" in page
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "Git commit" in page and "Database" in page


@pytest.mark.parametrize("connect_as", ["owner", "superuser"])
def test_application_connected_as_owner_or_superuser_fails(app_config, test_database,
                                                           backend, connect_as):
    """Issue 9, point 9: an application that could switch its guard triggers off (it owns
    the tables, or is a superuser) fails its IQ, and only that check."""
    if backend != "postgresql":
        pytest.skip("roles exist on PostgreSQL only")
    from qms.app import create_app
    from qms.bootstrap import ensure_keys

    # the suite's server URL names a superuser (postgres)
    superuser = make_url(os.environ["QMS_TEST_POSTGRES_URL"])
    url = test_database.owner_url if connect_as == "owner" else superuser.set(
        database=make_url(test_database.url).database).render_as_string(hide_password=False)
    application = create_app({**app_config, "DATABASE_URL": url})
    try:
        with application.app_context():
            ensure_keys()
        report = run(application)
    finally:
        application.extensions["qms"].db.dispose()
    assert failed_ids(report) == ["IQ-13"]
    expected = "is a superuser" if connect_as == "superuser" else "owns (or may act as the owner"
    assert expected in report.failed()[0].detail


def test_application_role_passes_naming_itself(installed, backend):
    [check] = [check for check in run(installed).checks if check.id == "IQ-13"]
    assert check.passed
    if backend == "postgresql":
        assert "'qms_test_app'" in check.detail and "owns nothing" in check.detail
