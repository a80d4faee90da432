"""Installation qualification (IQ): checks that a live instance is installed as specified.

Run inside an application context (``qms validate``). Each check observes and never
changes anything: it does not create a missing key, migrate the schema or repair a trigger.
The expected values (trigger names, file modes, Python version) are written here, in the
protocol, rather than read from the code under qualification, so that a change to that code
cannot silently change what the IQ accepts.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from flask import current_app
from packaging.requirements import Requirement as DependencySpec
from sqlalchemy import Connection, text

from qms import migrations
from qms.context import state
from qms.identity.roles import ADMIN_ROLE
from qms.settings import validate as validate_settings
from validation import render
from validation.provenance import DISTRIBUTION, report_header

MINIMUM_PYTHON = (3, 11)
PRIVATE_MODE = 0o600
# (table, trigger) pairs that make the audit trail and the record evidence append-only:
# audit.guards (migrations 0002 and 0012) and migration 0003
EXPECTED_TRIGGERS = {
    "sqlite": {
        ("audit_events", "audit_events_no_update"), ("audit_events", "audit_events_no_delete"),
        ("audit_events", "audit_events_no_replace"), ("audit_events", "audit_events_extend_head"),
        ("audit_checkpoints", "audit_checkpoints_no_update"),
        ("audit_checkpoints", "audit_checkpoints_no_delete"),
        ("audit_checkpoints", "audit_checkpoints_no_replace"),
        ("audit_head", "audit_head_no_delete"), ("audit_head", "audit_head_single"),
        ("audit_head", "audit_head_advance_only"),
        ("record_versions", "record_versions_no_update"),
        ("record_versions", "record_versions_no_delete"),
        ("signatures", "signatures_no_update"), ("signatures", "signatures_no_delete"),
    },
    "postgresql": {
        ("audit_events", "audit_events_no_change"), ("audit_events", "audit_events_no_truncate"),
        ("audit_events", "audit_events_extend_head"),
        ("audit_checkpoints", "audit_checkpoints_no_change"),
        ("audit_checkpoints", "audit_checkpoints_no_truncate"),
        ("audit_head", "audit_head_no_delete"), ("audit_head", "audit_head_no_truncate"),
        ("audit_head", "audit_head_advance_only"),
        ("record_versions", "record_versions_no_change"),
        ("record_versions", "record_versions_no_truncate"),
        ("signatures", "signatures_no_change"), ("signatures", "signatures_no_truncate"),
    },
}
# a disabled trigger (ALTER TABLE ... DISABLE TRIGGER) guards nothing, so it counts as absent
_PG_TRIGGERS_SQL = """
    SELECT c.relname, t.tgname FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND n.nspname = current_schema()"""
_SQLITE_TRIGGERS_SQL = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
# Evidence the application only ever appends to (docs/postgresql.md): its role may hold no
# UPDATE, DELETE or TRUNCATE on these.
APPEND_ONLY_TABLES = ("audit_events", "audit_checkpoints", "record_versions", "signatures",
                      "lot_consumptions", "deviation_lots", "deviation_lot_removals",
                      "change_control_approvals", "inspection_results", "erp_events",
                      "audit_chain_checks")
# PostgreSQL: what the role the application connects as must not be or hold, each a query
# naming the offending objects. MEMBER, not USAGE: a member of the owner role may SET ROLE
# to it even without inheriting its privileges; an owner of the schema may drop any table.
_PG_ROLE_PROBLEMS = (
    ("is a superuser",
     "SELECT current_user FROM pg_roles WHERE rolname = current_user AND rolsuper"),
    # up to PostgreSQL 15, CREATEROLE may grant itself membership of the owner role
    ("may create roles (and so make itself a member of the owner)",
     "SELECT current_user FROM pg_roles WHERE rolname = current_user AND rolcreaterole"),
    ("owns (or may act as the owner of) the database or schema",
     "SELECT datname FROM pg_database WHERE datname = current_database() "
     "AND pg_has_role(current_user, datdba, 'MEMBER') UNION ALL "
     "SELECT nspname FROM pg_namespace WHERE oid = current_schema()::regnamespace "
     "AND pg_has_role(current_user, nspowner, 'MEMBER')"),
    ("owns (or may act as the owner of)",
     "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
     "AND pg_has_role(current_user, relowner, 'MEMBER') ORDER BY relname"),
    ("may create objects in the schema",
     "SELECT current_schema() WHERE has_schema_privilege(current_schema(), 'CREATE')"),
    ("may write alembic_version",
     "SELECT relname FROM pg_class WHERE oid = to_regclass('alembic_version') "
     "AND has_table_privilege(oid, 'INSERT, UPDATE, DELETE, TRUNCATE')"),
    ("may change or remove rows of the append-only tables",
     "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
     "AND relname = ANY(:append_only) AND has_table_privilege(oid, 'UPDATE, DELETE, TRUNCATE') "
     "ORDER BY relname"),
    ("holds TRUNCATE or TRIGGER on",
     "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
     "AND relkind IN ('r', 'p') AND has_table_privilege(oid, 'TRUNCATE, TRIGGER') "
     "ORDER BY relname"),
)


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class IQReport:
    checks: tuple[CheckResult, ...]
    header: dict[str, str]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]


class CheckFailed(Exception):
    """Raised by a check to fail with a message; any other exception fails it too."""


# --- the checks: each returns its detail, or raises ---------------------------------------

def check_python() -> str:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < MINIMUM_PYTHON:
        raise CheckFailed(f"Python {version} is older than {'.'.join(map(str, MINIMUM_PYTHON))}")
    return f"Python {version} ({sys.implementation.name}) at {sys.executable}"


def check_dependencies() -> str:
    """Every runtime dependency declared by the qms distribution is installed, in range."""
    specs = [DependencySpec(line) for line in metadata.requires(DISTRIBUTION) or []]
    found, problems = [], []
    for spec in specs:
        if spec.marker is not None and not spec.marker.evaluate({"extra": ""}):
            continue  # optional (test) extras are not part of the installation
        try:
            installed = metadata.version(spec.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{spec.name} is not installed (required {spec.specifier})")
            continue
        found.append(f"{spec.name} {installed}")
        if not spec.specifier.contains(installed, prereleases=True):
            problems.append(f"{spec.name} {installed} is outside {spec.specifier}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return ", ".join(found)


def check_database() -> str:
    engine = state().db.engine
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        server = ".".join(map(str, connection.dialect.server_version_info or ()))
    return f"{engine.dialect.name} {server} at {engine.url.render_as_string(hide_password=True)}"


def check_schema_revision() -> str:
    from alembic.script import ScriptDirectory

    engine = state().db.engine
    head = ScriptDirectory.from_config(migrations.alembic_config(engine)).get_current_head()
    current = migrations.current_revision(engine)
    if current != head:
        raise CheckFailed(f"database is at revision {current or 'none'}, the migrations' head "
                          f"is {head}: run `qms db upgrade`")
    return f"database at head revision {head}"


def check_guard_triggers() -> str:
    engine = state().db.engine
    expected = EXPECTED_TRIGGERS.get(engine.dialect.name)
    if expected is None:
        raise CheckFailed(f"no guard triggers are specified for {engine.dialect.name}")
    with engine.connect() as connection:
        present = _triggers(connection)
    missing = sorted(expected - present)
    if missing:
        raise CheckFailed("missing or disabled: " + ", ".join(f"{t} on {table}"
                                                              for table, t in missing))
    return f"{len(expected)} append-only triggers present and enabled"


def _triggers(connection: Connection) -> set[tuple[str, str]]:
    sql = _SQLITE_TRIGGERS_SQL if connection.dialect.name == "sqlite" else _PG_TRIGGERS_SQL
    return {(table, name) for table, name in connection.execute(text(sql))}


def check_database_role() -> str:
    """The application cannot switch its own guard rails off: on PostgreSQL it connects as a
    role that is no superuser, owns nothing and only appends to the evidence tables."""
    engine = state().db.engine
    if engine.dialect.name != "postgresql":
        return (f"{engine.dialect.name} has no roles: the instance folder's file permissions "
                "are the database's access control")
    with engine.connect() as connection:
        role = connection.execute(text("SELECT current_user")).scalar_one()
        problems = _role_problems(connection)
    if problems:
        raise CheckFailed(f"the application connects as {role!r}, which " + "; ".join(problems)
                          + " (connect as a role that owns nothing: docs/postgresql.md)")
    return (f"the application connects as {role!r}: no superuser, owns nothing, appends only "
            "to the evidence tables, reads alembic_version only")


def _role_problems(connection: Connection) -> list[str]:
    """What the connected role must not hold, each with (up to five of) the objects it
    concerns. A superuser is reported alone: it holds everything else too."""
    problems = []
    for what, sql in _PG_ROLE_PROBLEMS:
        names = list(connection.execute(text(sql), {"append_only": list(APPEND_ONLY_TABLES)})
                     .scalars())
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            problems.append(f"{what}: {', '.join(names[:5])}{more}")
        if problems and what == "is a superuser":
            break
    return problems


def check_secret_key_file() -> str:
    secret_file = Path(current_app.instance_path) / "secret_key"
    if secret_file.exists():
        return _private_file(secret_file)
    if len(current_app.config["APP_SECRET_KEY"]) >= 32:
        return "no secret_key file: the key is supplied by configuration (QMS_APP_SECRET_KEY)"
    raise CheckFailed(f"{secret_file} is missing: run `qms init`")


def check_audit_key_file() -> str:
    key_file = state().audit_key_path
    if not key_file.exists():
        raise CheckFailed(f"{key_file} is missing: run `qms init`")
    return _private_file(key_file)


def _private_file(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode != PRIVATE_MODE:
        raise CheckFailed(f"{path} has mode {mode:04o}, expected {PRIVATE_MODE:04o} "
                          f"(readable by its owner only): chmod 600 {path}")
    return f"{path} present, mode {mode:04o}"


def check_checkpoint_folder() -> str:
    """The folder of the external checkpoint file accepts new files (tried, not assumed:
    os.access answers yes to root even on a read-only mount)."""
    checkpoint_file = state().checkpoint_file
    folder = checkpoint_file.parent
    if not folder.is_dir():
        raise CheckFailed(f"{folder} does not exist")
    with tempfile.TemporaryFile(dir=folder, prefix=".iq-write-test-"):
        pass
    if checkpoint_file.exists() and not os.access(checkpoint_file, os.W_OK):
        raise CheckFailed(f"{checkpoint_file} exists but cannot be appended to")
    return f"{folder} is writable"


def check_configuration() -> str:
    config = current_app.config
    validate_settings(config)
    if current_app.testing:
        raise CheckFailed("TESTING is on: that mode is for the test suite only")
    return (f"settings valid; lockout after {config['SECURITY_LOCKOUT_THRESHOLD']} failures, "
            f"passwords >= {config['SECURITY_PASSWORD_MIN_LENGTH']} characters, idle timeout "
            f"{config['SECURITY_SESSION_IDLE_MINUTES']} min")


def check_workflows() -> str:
    from qms.records.models import registered_record_types

    workflows = state().workflows.workflows
    without = sorted(set(registered_record_types()) - set(workflows))
    if not workflows or without:
        raise CheckFailed(f"record types without a workflow: {', '.join(without) or 'all'}")
    return "; ".join(f"{name}: {len(w.states)} states, {len(w.transitions)} transitions"
                     for name, w in sorted(workflows.items()))


def check_admin_cannot_sign() -> str:
    signing = {t.permission for w in state().workflows.workflows.values()
               for t in w.transitions if t.signed}
    admin = state().security.roles.permissions.get(ADMIN_ROLE, frozenset())
    overlap = sorted(signing & admin)
    if overlap:
        raise CheckFailed(f"the admin role holds signing permissions: {', '.join(overlap)}")
    return (f"admin holds {', '.join(sorted(admin)) or 'nothing'}; none of the signing "
            f"permissions {', '.join(sorted(signing))}")


def check_audit_chain() -> str:
    from audit.verify import verify_chain

    app_state = state()
    if not app_state.audit_key_path.exists():
        raise CheckFailed("no audit key, so the checkpoints cannot be verified")
    with app_state.db.reading() as session:
        result = verify_chain(session.connection(), public_keys=app_state.audit_public_keys(),
                              checkpoint_file=app_state.checkpoint_file,
                              site=app_state.audit_site())
    if result.problems:
        raise CheckFailed(f"audit chain BROKEN at seq {result.first_bad_seq}: {result.problem}")
    if not result.ok and result.events_checked:  # an empty new chain has nothing to anchor
        raise CheckFailed(f"audit chain UNANCHORED: {result.events_checked} events, but no "
                          "signed checkpoint vouches for them")
    return (f"intact: {result.events_checked} events, head seq {result.head_seq}, "
            f"{result.checkpoints_checked} checkpoints verified")


CHECKS: tuple[tuple[str, str, Callable[[], str]], ...] = (
    ("IQ-01", f"Python {'.'.join(map(str, MINIMUM_PYTHON))} or newer", check_python),
    ("IQ-02", "Required dependencies installed in their declared versions", check_dependencies),
    ("IQ-03", "Database reachable", check_database),
    ("IQ-04", "Database schema at the head Alembic revision", check_schema_revision),
    ("IQ-05", "Append-only guard triggers present", check_guard_triggers),
    ("IQ-06", "Instance secret key file private (mode 0600)", check_secret_key_file),
    ("IQ-07", "Audit checkpoint signing key file present and private (mode 0600)",
     check_audit_key_file),
    ("IQ-08", "Checkpoint file's folder writable", check_checkpoint_folder),
    ("IQ-09", "Configuration valid", check_configuration),
    ("IQ-10", "Workflows loaded for every record type", check_workflows),
    ("IQ-11", "Admin role holds no signing permission", check_admin_cannot_sign),
    ("IQ-12", "Audit chain and checkpoints verify", check_audit_chain),
    ("IQ-13", "Application's database role owns nothing and only appends evidence",
     check_database_role),
)


def run_check(check_id: str, description: str, check: Callable[[], str]) -> CheckResult:
    """Run one check; any exception fails it with its message, so that one broken check
    (e.g. the database is down) never hides the result of the others."""
    try:
        return CheckResult(check_id, description, True, check())
    except CheckFailed as failure:
        return CheckResult(check_id, description, False, str(failure))
    except Exception as error:  # noqa: BLE001  (reported, see docstring)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return CheckResult(check_id, description, False, f"{type(error).__name__}: {first_line}")


def run_iq() -> IQReport:
    """Run every IQ check against the current application; read-only."""
    engine = state().db.engine
    header = report_header(**{"Instance": current_app.instance_path,
                              "Database": engine.url.render_as_string(hide_password=True)})
    return IQReport(tuple(run_check(*check) for check in CHECKS), header)


def iq_text(report: IQReport) -> str:
    lines = [f"{c.id}  {'PASS' if c.passed else 'FAIL'}  {c.description}: {c.detail}"
             for c in report.checks]
    return "\n".join(lines) + "\n"


def iq_json(report: IQReport) -> dict:
    return {"header": report.header, "passed": report.passed,
            "checks": [vars(check) for check in report.checks]}


def iq_section(report: IQReport) -> str:
    """The IQ part of an HTML report."""
    rows = [[render.esc(c.id), render.esc(c.description), render.badge(
        "pass" if c.passed else "FAIL", c.passed), render.esc(c.detail)] for c in report.checks]
    verdict = render.badge(f"{len(report.checks) - len(report.failed())} of "
                           f"{len(report.checks)} checks passed", report.passed)
    return render.section("Installation qualification",
                          f'<p class="verdict">{verdict}</p>'
                          + render.table(["Check", "Description", "Result", "Detail"], rows))


def iq_html(report: IQReport) -> str:
    """A standalone HTML IQ report."""
    return render.page("QMS installation qualification report", report.header,
                       [iq_section(report)])
