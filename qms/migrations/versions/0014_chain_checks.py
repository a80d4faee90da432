"""Recorded verifications of the audit chain (qms.chain_checks)

The audit page shows the last verification and its time instead of walking the whole chain
on every visit; the scheduler verifies on its interval and records each outcome here. The
rows are the record of the trail's periodic review: append-only, like the other evidence.

Revision ID: 0014_chain_checks
Revises: 0013_lockout_by_client
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0014_chain_checks"
down_revision = "0013_lockout_by_client"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=150), nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("events_checked", sa.BigInteger(), nullable=False),
        sa.Column("checkpoints_checked", sa.Integer(), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("first_bad_seq", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"))
    op.create_index(op.f("ix_audit_chain_checks_finished_at"), "audit_chain_checks",
                    ["finished_at"], unique=False)
    make_append_only("audit_chain_checks")


def downgrade() -> None:
    raise RuntimeError("the record of audit chain verifications cannot be removed by a "
                       "migration")
