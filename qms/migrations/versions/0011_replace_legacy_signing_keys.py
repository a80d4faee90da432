"""Signing keys from before this version are replaced before they sign again

Earlier versions created a user's signing key under the temporary password an administrator
set, and re-wrapped it when the user chose their own: a backup from the temporary password's
time, with that password, still opens such a key. Nothing in a row tells whether it was ever
sealed under a temporary password, so every key active at upgrade time is marked
``replace_before_signing``; the user's next signature or own password change retires it and
creates a new key under the password just typed (qms.esign.keys.replace_legacy_key). Retired
keys sign nothing and are left unmarked.

Revision ID: 0011_replace_legacy_signing_keys
Revises: 0010_pinned_guard_functions
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_replace_legacy_signing_keys"
down_revision = "0010_pinned_guard_functions"
branch_labels = None
depends_on = None

signing_keys = sa.table("signing_keys", sa.column("retired_at", sa.DateTime(timezone=True)),
                        sa.column("replace_before_signing", sa.Boolean()))


def upgrade() -> None:
    op.add_column("signing_keys", sa.Column("replace_before_signing", sa.Boolean(),
                                            server_default=sa.false(), nullable=False))
    op.execute(signing_keys.update().where(signing_keys.c.retired_at.is_(None))
               .values(replace_before_signing=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("replace_before_signing")
