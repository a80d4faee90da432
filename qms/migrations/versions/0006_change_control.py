"""Change control: change controls, impacted items, approval slots

Revision ID: 0006_change_control
Revises: 0005_deviations_capa
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0006_change_control"
down_revision = "0005_deviations_capa"
branch_labels = None
depends_on = None

# generated with ``signatures`` listed too (for the approvals' foreign key) and that table
# (created by 0001) taken out again
TABLES = ('change_controls', 'change_control_approvals', 'change_control_items')
APPEND_ONLY: tuple[str, ...] = ("change_control_approvals",)


def upgrade() -> None:
    op.create_table('change_controls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('change_type', sa.String(length=20), nullable=False),
    sa.Column('risk', sa.String(length=10), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('justification', sa.Text(), nullable=False),
    sa.Column('implementation_plan', sa.Text(), nullable=False),
    sa.Column('implementation_notes', sa.Text(), nullable=False),
    sa.Column('verification_result', sa.String(length=20), nullable=True),
    sa.Column('verification_notes', sa.Text(), nullable=False),
    sa.CheckConstraint("change_type IN ('document', 'process', 'equipment', 'specification', 'supplier', 'system')", name='ck_change_controls_type'),
    sa.CheckConstraint("risk IN ('low', 'medium', 'high')", name='ck_change_controls_risk'),
    sa.CheckConstraint("verification_result IS NULL OR verification_result IN ('effective', 'not_effective')", name='ck_change_controls_verification_result'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_change_controls_state'), 'change_controls', ['state'], unique=False)
    op.create_table('change_control_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_control_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.String(length=20), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=False),
    sa.Column('signature_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_control_id'], ['change_controls.id'], ),
    sa.ForeignKeyConstraint(['signature_id'], ['signatures.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('change_control_id', 'slot', name='uq_change_control_approvals_slot'),
    sa.UniqueConstraint('change_control_id', 'username', name='uq_change_control_approvals_username'),
    sa.UniqueConstraint('signature_id')
    )
    op.create_table('change_control_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_control_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('item_number', sa.String(length=40), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('inspection_plan', 'material', 'document', 'supplier')", name='ck_change_control_items_kind'),
    sa.ForeignKeyConstraint(['change_control_id'], ['change_controls.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_change_control_items_change_control_id'), 'change_control_items', ['change_control_id'], unique=False)
    op.create_index('ix_change_control_items_item', 'change_control_items', ['kind', 'item_number'], unique=False)
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_index('ix_change_control_items_item', table_name='change_control_items')
    op.drop_index(op.f('ix_change_control_items_change_control_id'), table_name='change_control_items')
    op.drop_table('change_control_items')
    op.drop_table('change_control_approvals')
    op.drop_index(op.f('ix_change_controls_state'), table_name='change_controls')
    op.drop_table('change_controls')
