"""ERP outbox and delivery state

Revision ID: 0008_erp
Revises: 0007_inspection
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0008_erp"
down_revision = "0007_inspection"
branch_labels = None
depends_on = None

TABLES = ('erp_events', 'erp_deliveries')
APPEND_ONLY: tuple[str, ...] = ("erp_events",)


def upgrade() -> None:
    op.create_table('erp_events',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('lot', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.CheckConstraint("type IN ('batch.released', 'batch.rejected', 'lot.status_changed', 'inspection.decided')", name='ck_erp_events_type'),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index('ix_erp_events_lot_seq', 'erp_events', ['lot', 'seq'], unique=False)
    op.create_table('erp_deliveries',
    sa.Column('channel', sa.String(length=80), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'delivered', 'parked')", name='ck_erp_deliveries_state'),
    sa.ForeignKeyConstraint(['event_seq'], ['erp_events.seq'], ),
    sa.PrimaryKeyConstraint('channel', 'event_seq')
    )
    op.create_index('ix_erp_deliveries_channel_state', 'erp_deliveries', ['channel', 'state', 'event_seq'], unique=False)
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_index('ix_erp_deliveries_channel_state', table_name='erp_deliveries')
    op.drop_table('erp_deliveries')
    op.drop_index('ix_erp_events_lot_seq', table_name='erp_events')
    op.drop_table('erp_events')
