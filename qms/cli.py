"""The `qms` command (also `flask --app qms`). Each command is one unit of work: it commits
once at the end, or not at all. Events from the command line are attributed to `system`
(the operator of the server), with the reason the operator gives."""
from __future__ import annotations

import os
import secrets
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from qms.errors import DomainError
from qms.settings import ConfigError, instance_path, write_secret_key

CLI_ACTOR = "system"


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
        if created:
            if "QMS_ADMIN_PASSWORD" not in os.environ:
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
