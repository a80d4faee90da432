"""Append-only guard rails on record versions and signatures.

A version snapshot or a signature, once written, is evidence: like the audit events it may
be added but never changed or removed. (Detection still rests on the audit chain, which
carries every version's content hash and every signature.)

Revision ID: 0003_record_guards
Revises: 0002_audit_guards
"""
from alembic import op

revision = "0003_record_guards"
down_revision = "0002_audit_guards"
branch_labels = None
depends_on = None

EVIDENCE_TABLES = ("record_versions", "signatures")


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for table in EVIDENCE_TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} "
                           f"BEFORE {verb} ON {table} BEGIN SELECT RAISE(ABORT, "
                           f"'{table} is append-only: {verb} refused'); END")
        return
    for table in EVIDENCE_TABLES:
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")


def downgrade() -> None:
    raise RuntimeError("evidence guard rails cannot be removed by a migration")
