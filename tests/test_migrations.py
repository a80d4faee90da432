"""The migrations create exactly the schema the models declare, so a new table or column
cannot ship without its revision."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, make_url, text

from qms import migrations
from qms.db import make_engine
from qms.models import target_metadata


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = [d for metadata in target_metadata
                           for d in compare_metadata(context, metadata)
                           if not _other_metadata(d, metadata)]
    finally:
        engine.dispose()
    assert differences == []


def _other_metadata(difference, metadata) -> bool:
    # each metadata object sees the other's tables as "extra"; only its own count here
    kind = difference[0] if isinstance(difference, tuple) else difference[0][0]
    if kind == "remove_table":
        return difference[1].name not in metadata.tables
    if kind == "remove_index":
        return difference[1].table.name not in metadata.tables
    return False


@pytest.fixture
def empty_database(backend, test_database, tmp_path):
    """(owner URL, application role) of a database with no schema yet, on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}", ""
        return
    owner = make_url(test_database.owner_url)
    name = f"qms_empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(os.environ["QMS_TEST_POSTGRES_URL"])
                          .set(drivername="postgresql+psycopg", database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {owner.username}'))
    yield owner.set(database=name).render_as_string(hide_password=False), \
        make_url(test_database.url).username
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_flags_every_active_signing_key_for_replacement(empty_database):
    """0011: keys from before keys waited for the user's own password may have been sealed
    under a temporary one; every key active at upgrade is flagged, retired ones are not."""
    url, app_role = empty_database
    engine = make_engine(url)
    try:
        migrations.upgrade(engine, "0010_pinned_guard_functions", app_role=app_role)
        with engine.begin() as connection:
            _insert_user_with_keys(connection, active="a" * 16, retired="b" * 16)
        migrations.upgrade(engine, app_role=app_role)
        with engine.connect() as connection:
            flags = dict(connection.execute(text(
                "SELECT key_id, replace_before_signing FROM signing_keys")).all())
    finally:
        engine.dispose()
    assert flags == {"a" * 16: True, "b" * 16: False}


def _insert_user_with_keys(connection, *, active: str, retired: str) -> None:
    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    connection.execute(text(
        "INSERT INTO users (id, username, full_name, active, is_service, password_temporary, "
        "failed_attempts, created_at, created_by, session_generation) VALUES (1, 'tom', "
        "'Tom', true, false, false, 0, :now, 'system', 0)"), {"now": now})
    for key_id, retired_at in ((active, None), (retired, now)):
        connection.execute(text(
            "INSERT INTO signing_keys (key_id, user_id, public_key, wrapped_private_key, salt, "
            "nonce, scrypt_log_n, created_at, retired_at) VALUES (:key_id, 1, :public, :sealed,"
            " :salt, :nonce, 10, :now, :retired_at)"),
            {"key_id": key_id, "public": bytes(32), "sealed": None if retired_at else bytes(48),
             "salt": bytes(16), "nonce": bytes(12), "now": now, "retired_at": retired_at})
