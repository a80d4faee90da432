"""Alembic environment: uses the engine handed over in config.attributes."""
from __future__ import annotations

from alembic import context

from qms.models import target_metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
