"""Lots removed from a deviation that named them by mistake

Revision ID: 0009_deviation_lot_removals
Revises: 0008_erp
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0009_deviation_lot_removals"
down_revision = "0008_erp"
branch_labels = None
depends_on = None

TABLES = ('deviation_lot_removals',)
APPEND_ONLY: tuple[str, ...] = ("deviation_lot_removals",)


def upgrade() -> None:
    op.create_table('deviation_lot_removals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_by', sa.String(length=150), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['deviation_lots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('link_id')
    )
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_table('deviation_lot_removals')
