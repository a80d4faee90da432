"""Append-only guard rails on the audit tables and the chain head row.

Revision ID: 0002_audit_guards
Revises: 0001_initial
"""
from alembic import op

from audit import guards, schema

revision = "0002_audit_guards"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    guards.install_guards(connection)
    schema.initialize_head(connection)


def downgrade() -> None:
    # the audit trail is never downgraded away: refuse rather than drop the guards silently
    raise RuntimeError("the audit guard rails cannot be removed by a migration")
