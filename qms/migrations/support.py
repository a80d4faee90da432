"""Steps that several migrations share: append-only guard rails on evidence tables and the
application role's privileges on tables a revision adds. Used inside Alembic revisions."""
from __future__ import annotations

from alembic import context, op


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


def grant_app_role(tables: tuple[str, ...], append_only: tuple[str, ...] = ()) -> None:
    """PostgreSQL: the configured application role reads, inserts and updates the new
    ordinary tables and only inserts into the new evidence tables."""
    connection = op.get_bind()
    app_role = context.config.attributes.get("app_role")
    if connection.dialect.name != "postgresql" or not app_role:
        return
    role = connection.dialect.identifier_preparer.quote(app_role)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(tables)} TO {role}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    if append_only:
        op.execute(f"REVOKE UPDATE ON {', '.join(append_only)} FROM {role}")
