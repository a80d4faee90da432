"""Deviations and CAPA (tables added as the area is built).

Revision ID: 0005_deviations_capa
Revises: 0004_materials
"""
revision = "0005_deviations_capa"
down_revision = "0004_materials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
