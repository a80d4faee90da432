"""The `qms` command (also `flask --app qms`). Each command is one unit of work: it commits
once at the end, or not at all. Administrative commands (users, tokens, requeues) run as an
authenticated administrator, who is the actor of their audit events (``administer``), and
so do the audit commands that sign a checkpoint (checkpoint, export, rotate-key,
set-site-id); `system` is the actor only of `qms init` (the first account, the first
checkpoint) and of the scheduled jobs."""
from __future__ import annotations

import os
import secrets
import sys
from typing import Callable, TypeVar

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from qms.errors import DomainError
from qms.settings import ConfigError, instance_path, write_secret_key

CLI_ACTOR = "system"
OPERATOR_ENV, OPERATOR_PASSWORD_ENV = "QMS_OPERATOR", "QMS_OPERATOR_PASSWORD"
Result = TypeVar("Result")


def init_cli(app: Flask) -> None:
    from qms.cli_admin import audit_group, db_group, token_group, user_group
    from qms.erp.cli import erp_group
    from validation.cli import validate

    for group in (db_group, user_group, token_group, audit_group, erp_group):
        app.cli.add_command(group)
    app.cli.add_command(serve)
    app.cli.add_command(jobs)
    app.cli.add_command(validate)


def _create_app() -> Flask:
    from qms.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False)
def main() -> None:
    """QMS: GMP quality management system."""


@main.command("init", with_appcontext=False)
@click.option("--demo", is_flag=True, help="Also create demo users and records.")
def init_command(demo: bool) -> None:
    """Create the instance folder, keys, schema and the `admin` user (idempotent)."""
    instance = instance_path()
    write_secret_key(instance)
    app = _create_app()
    with app.app_context():
        from qms.bootstrap import create_admin, ensure_keys

        ensure_keys()
        upgrade_schema_or_fail()
        password = os.environ.get("QMS_ADMIN_PASSWORD") or secrets.token_urlsafe(15)
        try:
            created = create_admin(password, chosen="QMS_ADMIN_PASSWORD" in os.environ)
        except DomainError as error:
            fail(f"QMS_ADMIN_PASSWORD: {error.detail}")
        if demo and not created:
            # demo accounts sign with a published password: never on an instance in use
            fail("--demo only creates a new instance: this one already has its users (and "
                 "demo accounts would sign with a published password)")
        if created and "QMS_ADMIN_PASSWORD" not in os.environ:
            click.echo(f"admin password (shown once, must be changed at first login): {password}")
        if demo:
            from qms.demo import create_demo_data

            create_demo_data()
        from qms.bootstrap import anchor_chain

        anchor_chain()
    click.echo(f"instance ready in {instance}")


@click.command("serve")
@click.option("--host", default=None, help="Interface to listen on (default from config).")
@click.option("--port", default=None, type=int, help="Port (default from config).")
@with_appcontext
def serve(host: str | None, port: int | None) -> None:
    """Serve the application with gunicorn (a production WSGI server)."""
    from qms.server import run_gunicorn

    config = current_app.config
    run_gunicorn(host or config["SERVER_HOST"], port or config["SERVER_PORT"],
                 config["SERVER_WORKERS"])


@click.command("jobs")
@with_appcontext
def jobs() -> None:
    """Run the scheduled jobs (audit checkpoints, ...) in this one process."""
    from qms.jobs import run_scheduler

    run_scheduler()


def upgrade_schema_or_fail() -> None:
    """Migrate to head (qms.bootstrap.upgrade_schema); a wrong database configuration (no
    owner URL on PostgreSQL, an application role that owns the schema) exits non-zero with
    its message, the database unchanged."""
    from qms.bootstrap import upgrade_schema

    try:
        upgrade_schema()
    except ConfigError as error:
        fail(str(error))


def fail(message: str) -> None:
    """Print a clear message and exit non-zero; nothing was committed."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def fail_with(error: DomainError) -> None:
    """``fail`` with a domain error's detail and the fields it names."""
    fail(error.detail if not error.errors else f"{error.detail} {error.errors}")


def operator_credentials() -> tuple[str, str]:
    """The administrator running the command: QMS_OPERATOR and QMS_OPERATOR_PASSWORD when
    set (scripts), else prompted for, the password without echo."""
    try:
        username = os.environ.get(OPERATOR_ENV) or click.prompt("Administrator username")
        password = os.environ.get(OPERATOR_PASSWORD_ENV) or click.prompt(
            f"Password of {username}", hide_input=True)
    except click.Abort:  # end of input: a script without the variables, or Ctrl-C
        fail(f"an administrator must authenticate: set {OPERATOR_ENV} and "
             f"{OPERATOR_PASSWORD_ENV}, or answer the prompts")
    return username, password


def administer(permission: str, action: Callable[..., Result]) -> Result:
    """Authenticate the operator (who must hold ``permission``), then run
    ``action(session, operator)`` in the same transaction, committed once at the end; the
    operator is the actor of every event the action writes. A refused operator's failure
    count and audit event are committed, then the command exits non-zero; a domain error of
    the action exits non-zero with nothing written."""
    from qms.context import state
    from qms.identity.authentication import check_administrator

    username, password = operator_credentials()  # before the transaction: no lock held
    app_state = state()
    try:
        with app_state.db.unit_of_work() as session:
            check = check_administrator(session, app_state.security, username, password,
                                        permission=permission)
            if check.ok:
                return action(session, check.user)
    except DomainError as error:
        fail_with(error)
    fail(f"administrator {username!r} refused: {check.error.detail}")
