"""Change control (tables added as the area is built).

Revision ID: 0006_change_control
Revises: 0005_deviations_capa
"""
revision = "0006_change_control"
down_revision = "0005_deviations_capa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
