"""One client address cannot lock an account; unknown-user failures are tallied in the
database

``users.failures_by_client`` says how many of the failures counted toward the lockout came
from each client address: one address counts at most ``lockout_threshold - 1``, so it never
locks an account by itself, whatever the rate limit's storage (qms.identity.authentication).
Counts pending at upgrade time have no addresses and stay as they are.

``unknown_user_tallies`` counts failures at usernames that do not exist, per client and
interval, for every worker alike, so that the audit trail can say each interval's total once
it has ended (qms.identity.unknown_users).

Revision ID: 0013_lockout_by_client
Revises: 0012_audit_event_extends_head
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_lockout_by_client"
down_revision = "0012_audit_event_extends_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("failures_by_client", sa.JSON(), nullable=True))
    op.create_table(
        "unknown_user_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_username", sa.String(length=150), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client", "interval_start"))
    op.create_index(op.f("ix_unknown_user_tallies_closed_at"), "unknown_user_tallies",
                    ["closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_unknown_user_tallies_closed_at"), table_name="unknown_user_tallies")
    op.drop_table("unknown_user_tallies")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("failures_by_client")
