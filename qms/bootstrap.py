"""Instance set-up used by `qms init`: keys, schema, the first administrator."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from qms import migrations
from qms.context import state
from qms.db import make_engine
from qms.identity.authentication import find_user
from qms.identity.users import create_user
from qms.settings import ConfigError, write_root_key_id, write_site_id

ADMIN_USERNAME = "admin"


def ensure_keys() -> None:
    """Create the audit checkpoint signing key and the site id in the instance folder if
    missing. Only `qms init` creates them; everything else refuses to run without them
    (a key re-created elsewhere would be an unaudited rotation)."""
    from audit.checkpoints import create_signing_key

    app_state = state()
    if not app_state.audit_key_path.exists() and _trail_was_signed():
        raise click.ClickException(
            f"the audit signing key {app_state.audit_key_path} is missing but this instance "
            "has signed checkpoints: restore the key from the backup (a new key is made only "
            "by `qms audit rotate-key`)")
    create_signing_key(app_state.audit_key_path)
    _record_root_key(app_state)
    if not app_state.site_id:
        app_state.site_id = write_site_id(Path(current_app.instance_path))


def _record_root_key(app_state) -> None:
    """Record the trust root, the key that signs the first checkpoint, for `qms audit
    verify`, and print it for the IQ record (only while the trail is unsigned: later the
    current key need not be the first)."""
    from audit.checkpoints import key_id, load_signing_key

    instance = Path(current_app.instance_path)
    if app_state.root_key_id or _trail_was_signed():
        return
    root = key_id(load_signing_key(app_state.audit_key_path).public_key())
    if write_root_key_id(instance, root):
        click.echo(f"audit trust root: key {root} (record it in the IQ; auditors verify "
                   "exports against this key's public half)")
    app_state.root_key_id = root


def _trail_was_signed() -> bool:
    """Whether the database already holds checkpoints (False before the schema exists)."""
    from sqlalchemy import func, inspect, select

    from audit.schema import audit_checkpoints

    engine = state().db.engine
    if not inspect(engine).has_table("audit_checkpoints"):
        return False
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(audit_checkpoints)
                                  ).scalar_one() > 0


def upgrade_schema() -> None:
    """Bring the schema to head. SQLite: through the application's own connection (no
    roles). PostgreSQL: connected as the owner role (DATABASE_OWNER_URL), granting the role
    DATABASE_URL connects as exactly the application's privileges, in one transaction.
    Raises ConfigError, with nothing changed, when the owner URL is missing or the
    application role is a superuser or the owner (qms.migrations.privileges)."""
    app_engine = state().db.engine
    if app_engine.dialect.name != "postgresql":
        migrations.upgrade(app_engine)
        return
    owner_url = current_app.config["DATABASE_OWNER_URL"]
    if not owner_url:
        raise ConfigError("on PostgreSQL the schema is migrated by its owner role: set "
                          "QMS_DATABASE_OWNER_URL (DATABASE_URL is the application role, "
                          "which owns nothing; see docs/postgresql.md)")
    owner_engine = make_engine(owner_url)
    try:
        migrations.upgrade(owner_engine, app_role=_connected_role(app_engine))
    finally:
        owner_engine.dispose()


def _connected_role(engine: Engine) -> str:
    """The role the application connects as: the one to grant, whatever the URL spells."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT current_user")).scalar_one()
    except OperationalError as error:
        raise ConfigError(f"cannot connect with DATABASE_URL (the application role): "
                          f"{str(error.orig).strip().splitlines()[0]}") from None


def create_admin(password: str, *, chosen: bool) -> bool:
    """Create the `admin` user once. A generated password is temporary (changed at first
    login); one the operator chose through QMS_ADMIN_PASSWORD is not. Returns True when
    the user was created."""
    app_state = state()
    hashed = app_state.security.hash_password(password)
    with app_state.db.unit_of_work() as session:
        if find_user(session, ADMIN_USERNAME) is not None:
            return False
        create_user(session, app_state.security, actor="system", username=ADMIN_USERNAME,
                    full_name="System Administrator", roles=["admin"], password=hashed,
                    temporary=not chosen)
    return True


def anchor_chain() -> None:
    """Sign a checkpoint of the head right away, so an instance is anchored from its start
    (the scheduler adds one per interval afterwards)."""
    from audit.checkpoints import write_checkpoint

    app_state = state()
    with app_state.db.unit_of_work() as session:
        write_checkpoint(session, signing_key=app_state.audit_signing_key(),
                         file_path=app_state.checkpoint_file, site=app_state.audit_site(),
                         actor="system")
