"""Steps that several migrations share: append-only guard rails on evidence tables. Used
inside Alembic revisions. (The application role's privileges are not a migration step: they
are granted after every upgrade from the schema at head, see qms.migrations.privileges.)"""
from __future__ import annotations

from alembic import op


def make_append_only(*tables: str) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on evidence tables, as 0003 does
    for record versions and signatures."""
    if op.get_bind().dialect.name == "sqlite":
        for table in tables:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} "
                           f"BEFORE {verb} ON {table} BEGIN SELECT RAISE(ABORT, "
                           f"'{table} is append-only: {verb} refused'); END")
        return
    for table in tables:
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
