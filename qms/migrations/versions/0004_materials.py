"""Materials, suppliers, lots, batches and the genealogy edges.

Revision ID: 0004_materials
Revises: 0003_record_guards
"""
from alembic import op
import sqlalchemy as sa

from qms.migrations.support import make_append_only

revision = "0004_materials"
down_revision = "0003_record_guards"
branch_labels = None
depends_on = None

TABLES = ('materials', 'number_sequences', 'suppliers', 'lots', 'batches', 'lot_consumptions')
APPEND_ONLY: tuple[str, ...] = ("lot_consumptions",)


def upgrade() -> None:
    op.create_table('materials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('shelf_life_days', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('raw', 'packaging', 'intermediate', 'finished')", name='ck_materials_kind'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_materials_state'), 'materials', ['state'], unique=False)
    op.create_table('number_sequences',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('suppliers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_suppliers_state'), 'suppliers', ['state'], unique=False)
    op.create_table('lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('supplier_lot', sa.String(length=80), nullable=True),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('status_before_hold', sa.String(length=20), nullable=True),
    sa.CheckConstraint("origin = 'produced' OR supplier_id IS NOT NULL", name='ck_lots_received_from_supplier'),
    sa.CheckConstraint("origin IN ('received', 'produced')", name='ck_lots_origin'),
    sa.ForeignKeyConstraint(['material_id'], ['materials.id'], ),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_lots_expires_on', 'lots', ['expires_on'], unique=False)
    op.create_index('ix_lots_material_id', 'lots', ['material_id'], unique=False)
    op.create_index(op.f('ix_lots_state'), 'lots', ['state'], unique=False)
    op.create_index('ix_lots_supplier_id', 'lots', ['supplier_id'], unique=False)
    op.create_table('batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('produced_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], ),
    sa.ForeignKeyConstraint(['material_id'], ['materials.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lot_id'),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_batches_material_id'), 'batches', ['material_id'], unique=False)
    op.create_index(op.f('ix_batches_state'), 'batches', ['state'], unique=False)
    op.create_table('lot_consumptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('input_lot_id', sa.Integer(), nullable=False),
    sa.Column('output_lot_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_by', sa.String(length=150), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint('input_lot_id <> output_lot_id', name='ck_lot_consumptions_not_self'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], ),
    sa.ForeignKeyConstraint(['input_lot_id'], ['lots.id'], ),
    sa.ForeignKeyConstraint(['output_lot_id'], ['lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_lot_consumptions_batch_id'), 'lot_consumptions', ['batch_id'], unique=False)
    op.create_index('ix_lot_consumptions_input_output', 'lot_consumptions', ['input_lot_id', 'output_lot_id', 'quantity', 'unit'], unique=False)
    op.create_index('ix_lot_consumptions_output_input', 'lot_consumptions', ['output_lot_id', 'input_lot_id', 'quantity', 'unit'], unique=False)
    make_append_only(*APPEND_ONLY)


def downgrade() -> None:
    op.drop_index('ix_lot_consumptions_output_input', table_name='lot_consumptions')
    op.drop_index('ix_lot_consumptions_input_output', table_name='lot_consumptions')
    op.drop_index(op.f('ix_lot_consumptions_batch_id'), table_name='lot_consumptions')
    op.drop_table('lot_consumptions')
    op.drop_index(op.f('ix_batches_state'), table_name='batches')
    op.drop_index(op.f('ix_batches_material_id'), table_name='batches')
    op.drop_table('batches')
    op.drop_index('ix_lots_supplier_id', table_name='lots')
    op.drop_index(op.f('ix_lots_state'), table_name='lots')
    op.drop_index('ix_lots_material_id', table_name='lots')
    op.drop_index('ix_lots_expires_on', table_name='lots')
    op.drop_table('lots')
    op.drop_index(op.f('ix_suppliers_state'), table_name='suppliers')
    op.drop_table('suppliers')
    op.drop_table('number_sequences')
    op.drop_index(op.f('ix_materials_state'), table_name='materials')
    op.drop_table('materials')
