"""PostgreSQL: the application role's privileges, granted after every upgrade.

The owner (migration) role owns the schema and everything in it; the application connects
as a role that owns nothing, so it can neither drop nor disable the guard triggers, and it
holds exactly:

- SELECT on ``alembic_version``, nothing more (the IQ reads the revision; the application
  cannot pretend the schema is at another one);
- SELECT and INSERT on every other table;
- UPDATE on every table whose guard triggers do not refuse UPDATE: the audit trail and the
  evidence tables (versions, signatures, results, consumptions, ...) are append-only and get
  none; the chain head row does, and its own trigger only lets it advance by one event;
- DELETE only where the application replaces rows as a set (``DELETABLE``);
- USAGE on the schema and its sequences (serial ids; not setval);

never TRUNCATE, TRIGGER, REFERENCES, CREATE on the schema, or ownership.

The grants are derived from the schema at head, so a table added by a later revision is
covered without the revision saying anything, and a revision that makes a table append-only
(``support.make_append_only``) withholds UPDATE from it by that alone. Everything is revoked
first, so the result is the same whatever an earlier release granted.
"""
from __future__ import annotations

from sqlalchemy import Connection, text

from qms.settings import ConfigError

# tables whose rows the application deletes: role assignments are replaced as a set (the
# change itself is in the audit trail)
DELETABLE = ("user_roles",)
MIGRATION_TABLE = "alembic_version"
# TRIGGER_TYPE_UPDATE in PostgreSQL's pg_trigger.tgtype bit mask
_TRIGGER_ON_UPDATE = 16

_APPEND_ONLY_SQL = f"""
    SELECT DISTINCT c.relname FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE c.relnamespace = current_schema()::regnamespace AND p.pronamespace = c.relnamespace
      AND p.proname = 'audit_refuse_change' AND NOT t.tgisinternal
      AND (t.tgtype::int & {_TRIGGER_ON_UPDATE}) <> 0"""


class UnsafeAppRole(ConfigError):
    """The application role would hold the owner's or a superuser's powers: DATABASE_URL
    and DATABASE_OWNER_URL are configured wrongly."""


def refuse_unsafe_app_role(connection: Connection, role: str) -> None:
    """Raise UnsafeAppRole, before anything is migrated, when ``role`` (the application's) is
    a superuser, may create roles, or is the role migrating (the owner) or a member of it:
    such an application could switch the guard triggers off, and no grant takes that back."""
    row = connection.execute(text(
        "SELECT r.rolsuper, r.rolcreaterole, pg_has_role(r.oid, current_user, 'MEMBER') "
        "FROM pg_roles r WHERE r.rolname = :role"), {"role": role}).first()
    if row is None:
        raise UnsafeAppRole(f"the application role {role!r} does not exist")
    superuser, creates_roles, owner = row
    if superuser:
        raise UnsafeAppRole(f"the application role {role!r} is a superuser: DATABASE_URL must "
                            "connect as a role without superuser rights")
    if creates_roles:
        # up to PostgreSQL 15, CREATEROLE may grant itself membership of any other role
        raise UnsafeAppRole(f"the application role {role!r} has CREATEROLE, with which it can "
                            "make itself a member of the owner role: ALTER ROLE ... "
                            "NOCREATEROLE")
    if owner:
        raise UnsafeAppRole(f"the application role {role!r} is, or is a member of, the owner "
                            "role DATABASE_OWNER_URL connects as: the application must connect "
                            "as a role that owns nothing")


def grant_app_role(connection: Connection, role: str) -> None:
    """Give ``role`` exactly the privileges listed in the module docstring on the tables and
    sequences of the connection's current schema. Idempotent; executes, never commits."""
    quote = connection.dialect.identifier_preparer.quote
    quoted = quote(role)
    schema = quote(connection.execute(text("SELECT current_schema()")).scalar_one())
    tables = set(connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    append_only = set(connection.execute(text(_APPEND_ONLY_SQL)).scalars())
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {quoted}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {quoted}",
        f"REVOKE ALL ON SCHEMA {schema} FROM {quoted}",
        f"GRANT USAGE ON SCHEMA {schema} TO {quoted}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}",
        f"GRANT SELECT ON {schema}.{MIGRATION_TABLE} TO {quoted}",
    ]
    application_tables = sorted(tables - {MIGRATION_TABLE})
    updatable = [table for table in application_tables if table not in append_only]
    deletable = [table for table in DELETABLE if table in tables]
    for privileges, names in (("SELECT, INSERT", application_tables), ("UPDATE", updatable),
                              ("DELETE", deletable)):
        if names:
            qualified = ", ".join(f"{schema}.{quote(name)}" for name in names)
            statements.append(f"GRANT {privileges} ON {qualified} TO {quoted}")
    for statement in statements:
        connection.execute(text(statement))
