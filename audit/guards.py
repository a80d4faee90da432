"""Database guard rails that make the audit tables append-only.

Guards stop mistakes and casual edits; they do not stop a database owner, who can drop them.
Detection of tampering is the hash chain plus signed checkpoints (audit.verify).

- ``audit_events`` and ``audit_checkpoints``: UPDATE and DELETE refused (PostgreSQL also
  TRUNCATE). On SQLite an ``INSERT OR REPLACE`` deletes the conflicting row implicitly, which
  fires delete triggers only with ``recursive_triggers`` on; a BEFORE INSERT trigger that
  refuses a duplicate key closes that path regardless of the pragma.
- ``audit_events``: an inserted event must extend the head: its seq is head.seq + 1 and its
  prev_hash is head.hash. The writer (audit.trail.append) inserts the event first and then
  advances the head, in one transaction, so the check sees the head the event extends.
- ``audit_head``: never deleted, and an update may only advance it by one event whose hash
  it then carries.
"""
from __future__ import annotations

from sqlalchemy import Connection, text

from audit.schema import UnsupportedDatabase

APPEND_ONLY_TABLES = ("audit_events", "audit_checkpoints")

_SQLITE_TRIGGERS = {
    "audit_events_no_update": """
        CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END""",
    "audit_events_no_delete": """
        CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END""",
    # two EXISTS, not one OR, so that each probe is a single index lookup
    "audit_events_no_replace": """
        CREATE TRIGGER IF NOT EXISTS audit_events_no_replace BEFORE INSERT ON audit_events
        WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq)
          OR EXISTS (SELECT 1 FROM audit_events WHERE hash = NEW.hash)
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: seq or hash exists'); END""",
    # the head is read by its primary key: two lookups per insert
    "audit_events_extend_head": """
        CREATE TRIGGER IF NOT EXISTS audit_events_extend_head BEFORE INSERT ON audit_events
        WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1)
          OR NEW.prev_hash IS NOT (SELECT hash FROM audit_head WHERE id = 1)
        BEGIN SELECT RAISE(ABORT, 'audit_events: a new event must extend the chain head');
        END""",
    "audit_checkpoints_no_update": """
        CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update
        BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END""",
    "audit_checkpoints_no_delete": """
        CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete
        BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END""",
    "audit_checkpoints_no_replace": """
        CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_replace
        BEFORE INSERT ON audit_checkpoints
        WHEN EXISTS (SELECT 1 FROM audit_checkpoints WHERE id = NEW.id)
          OR EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: id or seq exists'); END""",
    "audit_head_no_delete": """
        CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
        BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END""",
    "audit_head_single": """
        CREATE TRIGGER IF NOT EXISTS audit_head_single BEFORE INSERT ON audit_head
        WHEN EXISTS (SELECT 1 FROM audit_head)
        BEGIN SELECT RAISE(ABORT, 'audit_head has exactly one row'); END""",
    "audit_head_advance_only": """
        CREATE TRIGGER IF NOT EXISTS audit_head_advance_only BEFORE UPDATE ON audit_head
        WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1
          OR NEW.hash IS NOT (SELECT hash FROM audit_events WHERE seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'audit_head may only advance to the next event'); END""",
}

# The trigger functions pin their search_path and name their tables with the schema the
# migration installed them in: otherwise a session could shadow audit_events with a
# temporary table (pg_temp is searched first for relations) and advance the head to an
# event that is not in the chain. pg_temp is listed last so that it is never searched first.
_PG_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION {schema}.audit_refuse_change() RETURNS trigger
       LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
       BEGIN
         RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
       END $$""",
    """CREATE OR REPLACE FUNCTION {schema}.audit_head_advance_only() RETURNS trigger
       LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
       BEGIN
         IF NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 OR NEW.hash IS DISTINCT FROM
            (SELECT e.hash FROM {schema}.audit_events e WHERE e.seq = NEW.seq) THEN
           RAISE EXCEPTION 'audit_head may only advance to the next event';
         END IF;
         RETURN NEW;
       END $$""",
    # FOR UPDATE: the writer holds the head row already (a no-op then); anyone else waits for
    # the writers and then compares with the head as last committed
    """CREATE OR REPLACE FUNCTION {schema}.audit_events_extend_head() RETURNS trigger
       LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
       DECLARE
         head_seq bigint;
         head_hash varchar;
       BEGIN
         SELECT h.seq, h.hash INTO head_seq, head_hash FROM {schema}.audit_head h
          WHERE h.id = 1 FOR UPDATE;
         IF head_seq IS NULL OR NEW.seq IS DISTINCT FROM head_seq + 1
            OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
           RAISE EXCEPTION 'audit_events: a new event must extend the chain head '
                           '(event %, head %)', NEW.seq, head_seq;
         END IF;
         RETURN NEW;
       END $$""",
)

# (trigger name, table, timing and level, function)
_PG_TRIGGERS = (
    ("audit_events_no_change", "audit_events",
     "BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW", "audit_refuse_change"),
    ("audit_events_no_truncate", "audit_events",
     "BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT", "audit_refuse_change"),
    ("audit_events_extend_head", "audit_events",
     "BEFORE INSERT ON audit_events FOR EACH ROW", "audit_events_extend_head"),
    ("audit_checkpoints_no_change", "audit_checkpoints",
     "BEFORE UPDATE OR DELETE ON audit_checkpoints FOR EACH ROW", "audit_refuse_change"),
    ("audit_checkpoints_no_truncate", "audit_checkpoints",
     "BEFORE TRUNCATE ON audit_checkpoints FOR EACH STATEMENT", "audit_refuse_change"),
    ("audit_head_no_delete", "audit_head",
     "BEFORE DELETE ON audit_head FOR EACH ROW", "audit_refuse_change"),
    ("audit_head_no_truncate", "audit_head",
     "BEFORE TRUNCATE ON audit_head FOR EACH STATEMENT", "audit_refuse_change"),
    ("audit_head_advance_only", "audit_head",
     "BEFORE UPDATE ON audit_head FOR EACH ROW", "audit_head_advance_only"),
)


def install_guards(connection: Connection) -> None:
    """Create the append-only triggers (and on PostgreSQL revoke privileges); idempotent.

    Executes DDL on ``connection``; never commits.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        for ddl in _SQLITE_TRIGGERS.values():
            connection.exec_driver_sql(ddl)
    elif dialect == "postgresql":
        _install_postgresql(connection)
    else:
        raise UnsupportedDatabase(f"no audit guards for dialect {dialect!r}")


def _install_postgresql(connection: Connection) -> None:
    schema = install_postgresql_functions(connection)
    for trigger in _PG_TRIGGERS:
        _create_pg_trigger(connection, schema, trigger)
    tables = ", ".join(APPEND_ONLY_TABLES)
    connection.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM PUBLIC"))
    connection.execute(text("REVOKE DELETE, TRUNCATE ON audit_head FROM PUBLIC"))


def _create_pg_trigger(connection: Connection, schema: str, trigger: tuple) -> None:
    name, _table, when, function = trigger
    connection.execute(text(f"CREATE OR REPLACE TRIGGER {name} {when} "
                            f"EXECUTE FUNCTION {schema}.{function}()"))


def install_head_extension_guard(connection: Connection) -> None:
    """Create the trigger that lets an event in only as the head's next event (and, on
    PostgreSQL, its function, pinned like the others); idempotent. For migration 0012,
    which adds it to databases made before it. Executes DDL, never commits."""
    name = "audit_events_extend_head"
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql(_SQLITE_TRIGGERS[name])
    elif dialect == "postgresql":
        schema = install_postgresql_functions(connection)
        _create_pg_trigger(connection, schema,
                           next(trigger for trigger in _PG_TRIGGERS if trigger[0] == name))
    else:
        raise UnsupportedDatabase(f"no audit guards for dialect {dialect!r}")


def install_postgresql_functions(connection: Connection) -> str:
    """(Re)create the trigger functions in the connection's current schema, with their
    search_path pinned and their tables schema-qualified; returns the quoted schema.
    Idempotent (CREATE OR REPLACE keeps the triggers that use them). Executes, never commits.
    """
    current = connection.execute(text("SELECT current_schema()")).scalar_one()
    schema = connection.dialect.identifier_preparer.quote_schema(current)
    for ddl in _PG_FUNCTIONS:
        connection.execute(text(ddl.format(schema=schema)))
    return schema


def drop_guards(connection: Connection) -> None:
    """Remove every guard. ONLY for tamper tests, which must simulate an attacker who owns
    the database; the application never calls this. Executes, never commits.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        for name in _SQLITE_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        for name, table, _when, _function in _PG_TRIGGERS:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
        connection.execute(text("DROP FUNCTION IF EXISTS audit_refuse_change() CASCADE"))
        connection.execute(text("DROP FUNCTION IF EXISTS audit_head_advance_only() CASCADE"))
        connection.execute(text("DROP FUNCTION IF EXISTS audit_events_extend_head() CASCADE"))
    else:
        raise UnsupportedDatabase(f"no audit guards for dialect {dialect!r}")
