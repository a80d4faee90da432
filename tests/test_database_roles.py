"""PostgreSQL runs with least privilege (issue 9, point 9): the schema is migrated by an
owner role; the application connects as a role that owns nothing and may only do what it
must. Against the real migrated database, as the real application role."""
from __future__ import annotations

import os
import re
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from qms import migrations
from qms.bootstrap import upgrade_schema
from qms.db import make_engine
from qms.migrations.privileges import DELETABLE
from qms.settings import ConfigError
from validation.iq import APPEND_ONLY_TABLES

# the suite's server URL names a superuser (postgres)
SUPERUSER_URL = os.environ.get("QMS_TEST_POSTGRES_URL", "")


@pytest.fixture
def backend() -> str:
    """Roles and privileges exist on PostgreSQL only (skipped without QMS_TEST_POSTGRES_URL);
    SQLite's access control is the instance folder's file permissions."""
    return "postgresql"


def refused_as_app(app, statement: str) -> str:
    with pytest.raises(DBAPIError) as caught:
        with app.extensions["qms"].db.engine.begin() as connection:
            connection.execute(text(statement))
    return str(caught.value.orig)


@pytest.mark.parametrize("statement", [
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE signatures DISABLE TRIGGER signatures_no_change",
    "DROP TRIGGER audit_head_advance_only ON audit_head",
    "SET session_replication_role = replica",
    "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NEW; END $$",
    "CREATE TRIGGER mine BEFORE INSERT ON audit_events FOR EACH ROW "
    "EXECUTE FUNCTION audit_refuse_change()",
    "DROP TABLE record_versions CASCADE",
    "DROP TRIGGER audit_events_extend_head ON audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_extend_head",
    "DROP FUNCTION audit_events_extend_head() CASCADE",
    "CREATE OR REPLACE FUNCTION audit_events_extend_head() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NEW; END $$",
])
def test_application_role_cannot_switch_the_guards_off(app, statement):
    message = refused_as_app(app, statement)
    assert re.search("permission denied|must be owner", message), message


def test_application_role_cannot_insert_an_event_that_does_not_extend_the_head(app):
    """The BEFORE INSERT guard of migration 0012, met by the role the application runs as:
    a raw event with the wrong seq or prev_hash is refused, a writer's event is not."""
    from audit import trail

    with app.extensions["qms"].db.unit_of_work() as session:
        first = trail.append(session, actor="tester", action="test.guard.passed", data={})
    seq, digest = first.seq, first.hash

    def event(at_seq: int, prev_hash: str) -> str:
        return ("INSERT INTO audit_events (seq, at, actor, action, prev_hash, hash, canonical) "
                f"VALUES ({at_seq}, '2026-01-01T00:00:00.000000Z', 'mallory', 'x.y.z', "
                f"'{prev_hash}', '{'e' * 64}', '{{}}')")
    for statement in (event(seq + 2, digest), event(seq, digest), event(seq + 1, "0" * 64)):
        assert "must extend the chain head" in refused_as_app(app, statement)
    with app.extensions["qms"].db.unit_of_work() as session:
        appended = trail.append(session, actor="tester", action="test.guard.passed", data={})
    assert (appended.seq, appended.prev_hash) == (seq + 1, digest)


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_application_role_may_not_update_delete_or_truncate_evidence(app, table):
    """Refused by privilege, before any trigger runs: the message is PostgreSQL's own."""
    key = "seq" if table in ("audit_events", "erp_events") else "id"
    for statement in (f"UPDATE {table} SET {key} = {key} WHERE false",
                      f"DELETE FROM {table} WHERE false", f"TRUNCATE {table}"):
        assert "permission denied" in refused_as_app(app, statement)


@pytest.mark.parametrize("statement", [
    "UPDATE alembic_version SET version_num = '0002_audit_guards'",
    "DELETE FROM alembic_version",
    "INSERT INTO alembic_version VALUES ('9999_faked')",
])
def test_application_role_only_reads_alembic_version(app, statement):
    assert "permission denied" in refused_as_app(app, statement)
    with app.extensions["qms"].db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_application_role_holds_exactly_its_privileges(app):
    with app.extensions["qms"].db.engine.connect() as connection:
        grants = _table_grants(connection)
        owned = connection.execute(text(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole")).scalar_one()
    assert owned == 0
    tables = set(grants)
    assert grants.pop("alembic_version") == {"SELECT"}
    assert all({"SELECT", "INSERT"} <= held for held in grants.values())
    assert {t for t, held in grants.items() if "DELETE" in held} == set(DELETABLE)
    assert {t for t, held in grants.items() if "UPDATE" not in held} == set(APPEND_ONLY_TABLES)
    assert all(held <= {"SELECT", "INSERT", "UPDATE", "DELETE"} for held in grants.values())
    assert {"audit_head", "users", "lots", "batches"} <= tables


def _table_grants(connection) -> dict[str, set[str]]:
    rows = connection.execute(text(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = current_user AND table_schema = current_schema()")).all()
    grants: dict[str, set[str]] = {}
    for table, privilege in rows:
        grants.setdefault(table, set()).add(privilege)
    return grants


def test_upgrade_revokes_what_an_earlier_release_granted(app, owner_engine):
    """The grant step runs after every upgrade and starts from nothing, so privileges from
    before (0003 granted UPDATE on every table, alembic_version included) do not survive."""
    with owner_engine.begin() as connection:
        connection.execute(text("GRANT ALL ON alembic_version, audit_events TO qms_test_app"))
    with app.app_context():
        upgrade_schema()
    assert "permission denied" in refused_as_app(app, "DELETE FROM alembic_version")
    assert "permission denied" in refused_as_app(app, "TRUNCATE audit_events")


def test_tables_of_later_revisions_are_granted_too(test_database):
    """A database migrated part of the way, then to head: the tables the later revisions add
    carry the same policy without those revisions naming the application role."""
    server = make_url(test_database.owner_url)
    name = f"qms_roles_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(SUPERUSER_URL).set(drivername="postgresql+psycopg",
                                                      database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {server.username}'))
    try:
        owner = make_engine(server.set(database=name).render_as_string(hide_password=False))
        migrations.upgrade(owner, "0003_record_guards", app_role="qms_test_app")
        migrations.upgrade(owner, app_role="qms_test_app")
        owner.dispose()
        app_engine = make_engine(make_url(test_database.url).set(database=name)
                                 .render_as_string(hide_password=False))
        with app_engine.connect() as connection:
            grants = _table_grants(connection)
        app_engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    assert grants["deviation_lot_removals"] == {"SELECT", "INSERT"}  # 0009, append-only
    assert grants["erp_deliveries"] == {"SELECT", "INSERT", "UPDATE"}  # 0008


@pytest.mark.parametrize("connect_as, message", [
    ("owner", "is, or is a member of, the owner role"),
    ("superuser", "is a superuser"),
])
def test_upgrade_refuses_an_application_role_with_owner_powers(app_config, test_database,
                                                               connect_as, message):
    from qms.app import create_app

    url = test_database.owner_url if connect_as == "owner" else make_url(SUPERUSER_URL).set(
        database=make_url(test_database.url).database).render_as_string(hide_password=False)
    application = create_app({**app_config, "DATABASE_URL": url})
    try:
        result = application.test_cli_runner().invoke(args=["db", "upgrade"])
    finally:
        application.extensions["qms"].db.dispose()
    assert result.exit_code == 1 and message in result.output


def test_upgrade_on_postgresql_needs_the_owner_url(app_config):
    from qms.app import create_app

    application = create_app({**app_config, "DATABASE_OWNER_URL": ""})
    try:
        with application.app_context(), pytest.raises(ConfigError, match="QMS_DATABASE_OWNER_URL"):
            upgrade_schema()
        result = application.test_cli_runner().invoke(args=["db", "upgrade"])
    finally:
        application.extensions["qms"].db.dispose()
    assert result.exit_code == 1 and "QMS_DATABASE_OWNER_URL" in result.output


@pytest.fixture
def role_that_creates_roles(test_database, owner_engine):
    """A login role holding the application's grants plus CREATEROLE; dropped after."""
    from qms.migrations.privileges import grant_app_role

    role = f"qms_test_cr_{uuid.uuid4().hex[:8]}"
    superuser = create_engine(make_url(SUPERUSER_URL).set(
        drivername="postgresql+psycopg", database=make_url(test_database.url).database),
        isolation_level="AUTOCOMMIT")
    with superuser.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN CREATEROLE"))
    with owner_engine.begin() as connection:
        grant_app_role(connection, role)
    yield make_url(test_database.url).set(username=role).render_as_string(hide_password=False)
    with superuser.connect() as connection:
        connection.execute(text(f"DROP OWNED BY {role}"))
        connection.execute(text(f"DROP ROLE {role}"))
    superuser.dispose()


def test_a_role_that_can_create_roles_is_refused_and_fails_the_iq(app_config,
                                                                  role_that_creates_roles):
    """Up to PostgreSQL 15 such a role may grant itself membership of the owner role."""
    from qms.app import create_app
    from qms.bootstrap import ensure_keys
    from validation.iq import run_iq

    application = create_app({**app_config, "DATABASE_URL": role_that_creates_roles})
    try:
        result = application.test_cli_runner().invoke(args=["db", "upgrade"])
        with application.app_context():
            ensure_keys()
            [check] = [c for c in run_iq().checks if c.id == "IQ-13"]
    finally:
        application.extensions["qms"].db.dispose()
    assert result.exit_code == 1 and "CREATEROLE" in result.output
    assert not check.passed and "may create roles" in check.detail
