"""Alembic migrations, run programmatically (`qms db upgrade`); no alembic.ini is needed, so a
built wheel migrates without a checkout."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine, app_role: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    config.attributes["app_role"] = app_role
    return config


def upgrade(engine: Engine, revision: str = "head", app_role: str = "") -> None:
    """Bring the schema to ``revision`` (creates it on an empty database), connected as the
    owner through ``engine``. On PostgreSQL, ``app_role`` names the role the application
    connects as: it is refused if it is a superuser or the owner (nothing is migrated then),
    and otherwise granted exactly its privileges in the same transaction
    (qms.migrations.privileges); raises privileges.UnsafeAppRole."""
    command.upgrade(alembic_config(engine, app_role), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
