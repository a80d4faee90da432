"""Deviations and the lots they name; CAPA and their actions

Revision ID: 0005_deviations_capa
Revises: 0004_materials
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0005_deviations_capa"
down_revision = "0004_materials"
branch_labels = None
depends_on = None

TABLES = ('capas', 'deviations', 'capa_actions', 'deviation_lots')
APPEND_ONLY: tuple[str, ...] = ("deviation_lots",)


def upgrade() -> None:
    op.create_table('capas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_reference', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('problem_statement', sa.Text(), nullable=False),
    sa.Column('root_cause', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=150), nullable=False),
    sa.Column('effectiveness_due_on', sa.Date(), nullable=True),
    sa.Column('effectiveness_overdue_reported_for', sa.Date(), nullable=True),
    sa.CheckConstraint("source IN ('deviation', 'audit', 'complaint', 'other')", name='ck_capas_source'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_capas_owner'), 'capas', ['owner'], unique=False)
    op.create_index('ix_capas_source_reference', 'capas', ['source', 'source_reference'], unique=False)
    op.create_index(op.f('ix_capas_state'), 'capas', ['state'], unique=False)
    op.create_table('deviations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('investigation', sa.Text(), nullable=False),
    sa.Column('root_cause', sa.Text(), nullable=False),
    sa.Column('impact_assessment', sa.Text(), nullable=False),
    sa.Column('capa_required', sa.Boolean(), nullable=True),
    sa.CheckConstraint("kind IN ('planned', 'unplanned')", name='ck_deviations_kind'),
    sa.CheckConstraint("severity IN ('minor', 'major', 'critical')", name='ck_deviations_severity'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_deviations_severity'), 'deviations', ['severity'], unique=False)
    op.create_index(op.f('ix_deviations_state'), 'deviations', ['state'], unique=False)
    op.create_table('capa_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('capa_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=150), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('added_by', sa.String(length=150), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=150), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('overdue_reported_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['capa_id'], ['capas.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('capa_id', 'position', name='uq_capa_actions_position')
    )
    op.create_index('ix_capa_actions_due_open', 'capa_actions', ['due_on', 'completed_at'], unique=False)
    op.create_table('deviation_lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deviation_id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=False),
    sa.Column('named_as', sa.String(length=10), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('added_by', sa.String(length=150), nullable=False),
    sa.CheckConstraint("named_as IN ('lot', 'batch')", name='ck_deviation_lots_named_as'),
    sa.ForeignKeyConstraint(['deviation_id'], ['deviations.id'], ),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('deviation_id', 'lot_id', name='uq_deviation_lots_lot')
    )
    op.create_index('ix_deviation_lots_lot_deviation', 'deviation_lots', ['lot_id', 'deviation_id'], unique=False)
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_index('ix_deviation_lots_lot_deviation', table_name='deviation_lots')
    op.drop_table('deviation_lots')
    op.drop_index('ix_capa_actions_due_open', table_name='capa_actions')
    op.drop_table('capa_actions')
    op.drop_index(op.f('ix_deviations_state'), table_name='deviations')
    op.drop_index(op.f('ix_deviations_severity'), table_name='deviations')
    op.drop_table('deviations')
    op.drop_index(op.f('ix_capas_state'), table_name='capas')
    op.drop_index('ix_capas_source_reference', table_name='capas')
    op.drop_index(op.f('ix_capas_owner'), table_name='capas')
    op.drop_table('capas')
