"""Alembic environment: uses the engine handed over in config.attributes.

On PostgreSQL, when an application role is named (``app_role``), it is checked before any
revision runs and granted its privileges after the last one, in the same transaction: an
upgrade either leaves the schema at head with the application's privileges to match, or
changes nothing (qms.migrations.privileges).
"""
from __future__ import annotations

from alembic import context

from qms.migrations import privileges
from qms.models import target_metadata

config = context.config
engine = config.attributes["engine"]
app_role = config.attributes.get("app_role", "")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        if app_role:
            privileges.refuse_unsafe_app_role(connection, app_role)
        context.run_migrations()
        if app_role:
            privileges.grant_app_role(connection, app_role)
