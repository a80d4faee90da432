"""A new audit event must extend the chain head

Until now the database refused to change or remove events, and let the head row advance only
to the next event; but an event could be inserted anywhere above the head, with any seq and
prev_hash (the verifier then reports it, as events above the head). A BEFORE INSERT trigger
on ``audit_events`` now refuses an event whose seq is not head.seq + 1 or whose prev_hash is
not the head's hash (audit.guards). The writer inserts the event before it advances the head,
in the same transaction, so the trigger compares with the head the event extends. On
PostgreSQL the trigger function pins its search_path and qualifies the head table like the
functions of 0010; the owner role creates it, so the application role can neither drop,
replace nor disable it. On SQLite the trigger reads the head row by its key.

Revision ID: 0012_audit_event_extends_head
Revises: 0011_replace_legacy_signing_keys
"""
from alembic import op

from audit import guards

revision = "0012_audit_event_extends_head"
down_revision = "0011_replace_legacy_signing_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    guards.install_head_extension_guard(op.get_bind())


def downgrade() -> None:
    raise RuntimeError("the audit guard rails cannot be weakened by a migration")
