"""Guard functions with a pinned search_path and schema-qualified tables

The trigger function that lets the chain head advance only to the next event looked up
``audit_events`` through the caller's search_path, where a temporary table of that name comes
first: a session could advance the head to an event that is not in the chain. The functions
are recreated with ``SET search_path = pg_catalog, pg_temp`` and their tables qualified with
the schema they live in (audit.guards). The triggers keep pointing at them (CREATE OR
REPLACE keeps a function's identity). SQLite needs nothing: a trigger of the main database
resolves its tables there, never in the temp schema.

Revision ID: 0010_pinned_guard_functions
Revises: 0009_deviation_lot_removals
"""
from alembic import op

from audit import guards

revision = "0010_pinned_guard_functions"
down_revision = "0009_deviation_lot_removals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        guards.install_postgresql_functions(connection)


def downgrade() -> None:
    raise RuntimeError("the audit guard rails cannot be weakened by a migration")
