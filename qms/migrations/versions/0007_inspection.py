"""Inspection plans, inspection lots and their results

Revision ID: 0007_inspection
Revises: 0006_change_control
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0007_inspection"
down_revision = "0006_change_control"
branch_labels = None
depends_on = None

TABLES = ('inspection_plans', 'inspections', 'inspection_results')
APPEND_ONLY: tuple[str, ...] = ("inspection_results",)


def upgrade() -> None:
    op.create_table('inspection_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('operation', sa.String(length=80), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('supersedes', sa.String(length=40), nullable=True),
    sa.Column('sample_size', sa.Integer(), nullable=True),
    sa.Column('inspection_level', sa.String(length=3), nullable=True),
    sa.Column('aql', sa.String(length=40), nullable=True),
    sa.Column('characteristics', sa.JSON(), nullable=False),
    sa.CheckConstraint("inspection_level IS NULL OR inspection_level IN ('I', 'II', 'III')", name='ck_inspection_plans_level'),
    sa.CheckConstraint("stage IN ('incoming', 'in_process', 'final')", name='ck_inspection_plans_stage'),
    sa.ForeignKeyConstraint(['material_id'], ['materials.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_inspection_plans_material_stage', 'inspection_plans', ['material_id', 'stage'], unique=False)
    op.create_index(op.f('ix_inspection_plans_state'), 'inspection_plans', ['state'], unique=False)
    op.create_table('inspections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('plan_revision', sa.Integer(), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('operation', sa.String(length=80), nullable=True),
    sa.Column('lot_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('lot_size', sa.BigInteger(), nullable=False),
    sa.Column('sample_size', sa.Integer(), nullable=False),
    sa.Column('code_letter', sa.String(length=1), nullable=True),
    sa.Column('accept_number', sa.Integer(), nullable=True),
    sa.Column('reject_number', sa.Integer(), nullable=True),
    sa.Column('characteristics', sa.JSON(), nullable=False),
    sa.Column('deviation', sa.String(length=40), nullable=True),
    sa.CheckConstraint("stage IN ('incoming', 'in_process', 'final')", name='ck_inspections_stage'),
    sa.CheckConstraint('lot_id IS NOT NULL OR batch_id IS NOT NULL', name='ck_inspections_inspects_something'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], ),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], ),
    sa.ForeignKeyConstraint(['material_id'], ['materials.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['inspection_plans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_inspections_batch_id', 'inspections', ['batch_id'], unique=False)
    op.create_index('ix_inspections_lot_id', 'inspections', ['lot_id'], unique=False)
    op.create_index('ix_inspections_plan_id', 'inspections', ['plan_id'], unique=False)
    op.create_index(op.f('ix_inspections_state'), 'inspections', ['state'], unique=False)
    op.create_table('inspection_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('characteristic', sa.String(length=40), nullable=False),
    sa.Column('sample', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=40), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('conforming', sa.Boolean(), nullable=False),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=150), nullable=False),
    sa.CheckConstraint('(value IS NULL) <> (passed IS NULL)', name='ck_inspection_results_value_or_passed'),
    sa.CheckConstraint('corrects_id IS NULL OR reason IS NOT NULL', name='ck_inspection_results_correction_reason'),
    sa.ForeignKeyConstraint(['corrects_id'], ['inspection_results.id'], ),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('corrects_id'),
    sa.UniqueConstraint('inspection_id', 'seq', name='uq_inspection_results_seq')
    )
    op.create_index(op.f('ix_inspection_results_inspection_id'), 'inspection_results', ['inspection_id'], unique=False)
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_index(op.f('ix_inspection_results_inspection_id'), table_name='inspection_results')
    op.drop_table('inspection_results')
    op.drop_index(op.f('ix_inspections_state'), table_name='inspections')
    op.drop_index('ix_inspections_plan_id', table_name='inspections')
    op.drop_index('ix_inspections_lot_id', table_name='inspections')
    op.drop_index('ix_inspections_batch_id', table_name='inspections')
    op.drop_table('inspections')
    op.drop_index(op.f('ix_inspection_plans_state'), table_name='inspection_plans')
    op.drop_index('ix_inspection_plans_material_stage', table_name='inspection_plans')
    op.drop_table('inspection_plans')
