"""Inspection plans, inspection lots and results (tables added as the area is built).

Revision ID: 0007_inspection
Revises: 0006_change_control
"""
revision = "0007_inspection"
down_revision = "0006_change_control"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
