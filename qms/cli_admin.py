"""Administration commands: database, users, service tokens, audit trail.

Commands that change users or tokens authenticate the operator first (``qms.cli.administer``,
permission ``user.manage``) and name them as the actor; listings only read."""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import click
from flask.cli import AppGroup

from qms.cli import administer, fail, fail_with, upgrade_schema_or_fail
from qms.context import state
from qms.errors import DomainError
from qms.identity import tokens, users
from qms.identity.authentication import find_user
from qms.identity.models import ApiToken
from qms.identity.passwords import HashedPassword

db_group = AppGroup("db", help="Database schema.")
user_group = AppGroup("user", help="User accounts.")
token_group = AppGroup("token", help="API tokens for service accounts.")
audit_group = AppGroup("audit", help="The audit trail.")
USER_MANAGE = "user.manage"


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest revision (PostgreSQL: as the owner role of
    QMS_DATABASE_OWNER_URL, then grant the application role its privileges)."""
    upgrade_schema_or_fail()
    click.echo("database schema is up to date")
    _name_the_site()


def _name_the_site() -> None:
    """An instance from before checkpoints named their site gets its site id here, once, as
    `qms init` gives a new one (without it no checkpoint could be signed). A lost site id of
    an instance whose trail names one (its last recorded site change, else its newest
    checkpoint) is not replaced: that would split its trail. A new id for an instance that
    has one is `qms audit set-site-id`, which records the change."""
    from flask import current_app

    from audit.succession import current_site
    from qms.settings import write_site_id

    app_state = state()
    if app_state.site_id:
        return
    keys = app_state.audit_public_keys() if app_state.audit_key_path.exists() else None
    with app_state.db.reading() as session:
        named = current_site(session, keys)
    if named:
        fail(f"the audit site id is missing but the audit trail's site is {named}: restore "
             "instance/site_id from the backup or set QMS_AUDIT_SITE_ID")
    app_state.site_id = write_site_id(Path(current_app.instance_path))
    click.echo(f"audit site id {app_state.site_id} written to the instance folder")


def _read_password_line() -> HashedPassword:
    """The temporary password on standard input, hashed before any transaction opens (argon2
    under the write lock would stall every other writer)."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("no password on standard input")
    return state().security.hash_password(line)


def _unit_of_work(action):
    """Run ``action(session)`` as one transaction; domain errors exit non-zero, unchanged."""
    try:
        with state().db.unit_of_work() as session:
            return action(session)
    except DomainError as error:
        fail_with(error)


def _existing_user(session, username: str):
    user = find_user(session, username)
    if user is None:
        fail(f"no user {username!r}")
    return user


@user_group.command("create")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="Printed full name (signatures).")
@click.option("--role", "roles", multiple=True, required=True, help="Role; repeat for several.")
@click.option("--password-stdin", is_flag=True, help="Read a temporary password from stdin.")
@click.option("--service", is_flag=True, help="Service account (tokens only, cannot sign).")
def user_create(username, full_name, roles, password_stdin, service) -> None:
    """Create a user with a temporary password they must change, or a service account."""
    if not service and not password_stdin:
        fail("--password-stdin is required for a person's account")
    password = _read_password_line() if password_stdin else None
    administer(USER_MANAGE, lambda s, operator: users.create_user(
        s, state().security, actor=operator.username, username=username, full_name=full_name,
        roles=list(roles), password=password, service=service))
    click.echo(f"created {'service account' if service else 'user'} {username}")


@user_group.command("deactivate")
@click.argument("username")
@click.option("--reason", required=True)
def user_deactivate(username, reason) -> None:
    """Deactivate (never delete) a user; the username stays reserved."""
    administer(USER_MANAGE, lambda s, operator: users.deactivate_user(
        s, actor=operator.username, user=_existing_user(s, username), reason=reason))
    click.echo(f"deactivated {username}")


@user_group.command("reset-password")
@click.argument("username")
@click.option("--reason", required=True)
@click.option("--password-stdin", is_flag=True, required=True)
def user_reset_password(username, reason, password_stdin) -> None:
    """Set a temporary password, unlock, and retire the user's signing key (the next is
    created when they set their own password)."""
    password = _read_password_line()
    administer(USER_MANAGE, lambda s, operator: users.reset_password(
        s, state().security, actor=operator.username, user=_existing_user(s, username),
        temporary_password=password, reason=reason))
    click.echo(f"password of {username} reset; it must be changed at next login")


@user_group.command("unlock")
@click.argument("username")
@click.option("--reason", required=True)
def user_unlock(username, reason) -> None:
    administer(USER_MANAGE, lambda s, operator: users.unlock_user(
        s, actor=operator.username, user=_existing_user(s, username), reason=reason))
    click.echo(f"unlocked {username}")


@user_group.command("set-roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--reason", required=True)
def user_set_roles(username, roles, reason) -> None:
    administer(USER_MANAGE, lambda s, operator: users.set_roles(
        s, state().security, actor=operator.username, user=_existing_user(s, username),
        roles=list(roles), reason=reason))
    click.echo(f"roles of {username}: {', '.join(sorted(set(roles)))}")


@user_group.command("list")
def user_list() -> None:
    with state().db.reading() as session:
        for user in users.list_users(session):
            status = "active" if user.active else "deactivated"
            status += ", locked" if user.locked else ""
            kind = "service" if user.is_service else "person"
            click.echo(f"{user.username:20} {user.full_name:30} {','.join(user.roles):30} "
                       f"{kind:8} {status}")


@token_group.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the token is for.")
@click.option("--days", type=int, default=None, help="Lifetime (default from config).")
def token_create(username, name, days) -> None:
    """Issue a token for a service account and print it once."""
    lifetime = timedelta(days=days or state().security.service_token_days)

    def issue(session, operator):
        user = _existing_user(session, username)
        if not user.is_service:
            fail(f"{username} is not a service account; people get tokens from "
                 "POST /api/v1/auth/tokens")
        return tokens.issue_token(session, actor=operator.username, user=user,
                                  lifetime=lifetime, kind="service", name=name)
    secret, row = administer(USER_MANAGE, issue)
    click.echo(secret)
    click.echo(f"token {row.id} expires {row.expires_at.isoformat()}", err=True)


@token_group.command("list")
@click.argument("username")
def token_list(username) -> None:
    """The user's tokens (prefix, kind, expiry, revocation); never the secrets."""
    with state().db.reading() as session:
        for token in tokens.tokens_of(session, _existing_user(session, username)):
            status = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "live"
            click.echo(f"{token.id:6} {token.prefix:14} {token.kind:8} "
                       f"expires {token.expires_at:%Y-%m-%d %H:%M}Z  {status}  {token.name}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@click.option("--reason", required=True)
def token_revoke(token_id, reason) -> None:
    """Revoke a token at once (e.g. a leaked ERP credential)."""
    def revoke(session, operator):
        token = session.get(ApiToken, token_id)
        if token is None:
            fail(f"no token {token_id}")
        tokens.revoke_token(session, actor=operator.username, token=token, reason=reason)
    administer(USER_MANAGE, revoke)
    click.echo(f"revoked token {token_id}")


@audit_group.command("verify")
def audit_verify() -> None:
    """Verify the chain, its checkpoints (rows, file, events) and its anchor; exit 1 naming
    the first bad seq, or when no checkpoint vouches for the chain (UNANCHORED)."""
    from audit.verify import BROKEN
    from qms.auditing import verify_trail

    _signing_key()  # a missing key file is an error here too, never a silent new key
    with state().db.reading() as session:
        result = verify_trail(session, progress=_progress("verifying"))
    click.echo("", err=True)  # end the progress line
    click.echo(f"trust root: key {result.root_key_id} " + (
        "(pinned by audit.root_key_id / instance/audit_root_key_id)" if result.root_pinned
        else "(NOT pinned: the first checkpoint's key was taken; set audit.root_key_id)")
        + ": compare it with the IQ record")
    if result.verdict == BROKEN:
        fail(f"audit chain BROKEN at seq {result.first_bad_seq}: {result.problem}")
    if not result.ok:
        fail(f"audit chain UNANCHORED: {result.events_checked} events, consistent, but no "
             "signed checkpoint vouches for them (write one: qms audit checkpoint)")
    click.echo(f"audit chain intact: {result.events_checked} events, head seq "
               f"{result.head_seq} {result.head_hash}, {result.checkpoints_checked} checkpoints; "
               f"last anchor at seq {result.anchored_seq}, {result.unanchored_events} "
               "event(s) after it")


def _signed_checkpoint(actor: str):
    """Sign and commit a checkpoint of the head now; None when the trail is empty."""
    return _unit_of_work(lambda session: _checkpoint(session, _signing_key(), actor))


def _checkpoint(session, signing_key, actor: str, purpose: str = "routine"):
    """Sign a checkpoint of the head in ``session`` (flushes, never commits)."""
    from audit.checkpoints import write_checkpoint

    from audit.trail import AuditError

    app_state = state()
    try:
        return write_checkpoint(session, signing_key=signing_key,
                                file_path=app_state.checkpoint_file,
                                site=app_state.audit_site(), actor=actor, purpose=purpose,
                                public_keys=app_state.audit_public_keys())
    except AuditError as error:  # a site or a key the trail does not allow: nothing written
        fail(str(error))


def _signing_key():
    try:
        return state().audit_signing_key()
    except FileNotFoundError as error:  # SigningKeyMissing: never re-created silently
        fail(str(error))


@audit_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def audit_export(output: Path) -> None:
    """Sign a closing checkpoint over the head, then export events and checkpoints through
    it as JSON lines for the stand-alone verifier (so the whole export is anchored)."""
    from audit.checkpoints import EXPORT
    from audit.export import export_jsonl
    from audit.verify import BROKEN
    from qms.auditing import verify_trail

    _signing_key()  # a missing key file fails here, before anything is asked
    # the closing checkpoint vouches for the exported chain: never for one found BROKEN
    with state().db.reading() as session:
        found = verify_trail(session, progress=_progress("verifying"))
    click.echo("", err=True)
    if found.verdict == BROKEN:
        fail(f"audit chain BROKEN at seq {found.first_bad_seq}: {found.problem}; not exported "
             "(its closing checkpoint would vouch for it); see qms audit verify")
    # the person exporting signs the closing checkpoint, so the export names who made it
    # the key is read when it signs: one read before the prompt and the verification could
    # have been retired meanwhile by `qms audit rotate-key`
    closing = administer("audit.export", lambda session, operator: _checkpoint(
        session, _signing_key(), operator.username, purpose=EXPORT))
    if closing is None:
        fail("the audit trail is empty; nothing to export")
    with state().db.reading() as session, open(output, "w", encoding="utf-8",
                                               newline="\n") as out:
        count = export_jsonl(session.connection(), out, closing=closing,
                             progress=_progress("exporting"))
    click.echo("", err=True)
    click.echo(f"exported {count} events to {output}, closed by the checkpoint at seq "
               f"{closing.seq} signed {closing.at}")


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the chain head now, as the authenticated administrator."""
    _signing_key()  # a missing key file fails here, before the password is asked for
    written = administer("audit.checkpoint", lambda session, operator: _checkpoint(
        session, _signing_key(), operator.username))
    if written is None:
        fail("the audit trail is empty; nothing to checkpoint")
    click.echo(f"checkpoint at seq {written.seq} {written.hash}")


@audit_group.command("rotate-key")
@click.option("--reason", required=True, help="Why the key is replaced (recorded).")
def audit_rotate_key(reason: str) -> None:
    """Replace the checkpoint signing key: the rotation event (old key id -> new key id),
    a checkpoint over it signed with the old key (which so hands over to the new one), the
    new key current (the old public key kept for verification), and a first checkpoint
    under the new key."""
    from audit import keys
    from audit.checkpoints import key_id
    from audit.succession import rotation_data
    from qms.audit_actions import AuditAction
    from qms.auditing import record_event

    if not reason.strip():
        fail("--reason must not be empty")
    app_state = state()
    _signing_key()  # a missing key file fails here, before anything is asked
    with keys.rotation_lock(app_state.audit_key_path, on_wait=lambda: click.echo(
            "another key rotation is running on this instance; waiting for it to end",
            err=True)):
        old_key, new_key = _signing_key(), keys.new_signing_key()
        old_id, new_id = key_id(old_key.public_key()), key_id(new_key.public_key())

        def record(session, operator):
            record_event(session, actor=operator.username, action=AuditAction.Audit.KEY_ROTATED,
                         reason=reason,
                         data=rotation_data(old_id, new_id, app_state.audit_site()))
            return operator.username
        operator = administer("audit.checkpoint", record)
        # the old key signs over the rotation event: without it verifiers refuse the new key
        _unit_of_work(lambda session: _checkpoint(session, old_key, operator))
        keys.install_key(app_state.audit_key_path, old_key, new_key)
        app_state.forget_audit_key()
        _signed_checkpoint(operator)  # the first one under the new key
    click.echo(f"audit signing key rotated: {old_id} -> {new_id} (the old public key stays "
               "for verification)")


@audit_group.command("set-site-id")
@click.argument("site_id")
@click.option("--reason", required=True, help="Why the site id changes (recorded).")
def audit_set_site_id(site_id: str, reason: str) -> None:
    """Give this instance a new audit site id (a copy of production takes its own): records
    audit.site.changed (old id -> new id) with the reason, writes instance/site_id, and signs
    a first checkpoint under the new id. The old id's checkpoints stay valid for the events
    before the change. Stop `qms serve` and `qms jobs` first: until restarted they keep the
    old id, and refuse to sign checkpoints."""
    from flask import current_app

    from audit.succession import current_site, site_change_data
    from qms.audit_actions import AuditAction
    from qms.auditing import record_event
    from qms.settings import SITE_ID_PATTERN, load_settings, replace_site_id

    if not reason.strip():
        fail("--reason must not be empty")
    if not SITE_ID_PATTERN.fullmatch(site_id):
        fail("a site id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
             "or digit")
    setting = load_settings()["AUDIT_SITE_ID"]  # the configured one, not the file's
    if setting and setting != site_id:
        fail(f"the setting AUDIT_SITE_ID (QMS_AUDIT_SITE_ID or the QMS_CONFIG file) says "
             f"{setting}: set it to {site_id}, or remove it, and run this again")
    _signing_key()  # the new id signs a checkpoint at once: no key, no change
    app_state, instance = state(), Path(current_app.instance_path)

    replaced: list[str | None] = []  # what the site id file held, once the change rewrote it

    def change(session, operator):
        old = current_site(session, app_state.audit_public_keys()) or app_state.site_id or None
        if old == site_id:
            fail(f"the audit site id is already {site_id}")
        record_event(session, actor=operator.username, action=AuditAction.Audit.SITE_CHANGED,
                     reason=reason, data=site_change_data(old, site_id))
        replaced.append(replace_site_id(instance, site_id))  # the last step before the commit
        return old, operator.username
    try:
        old, operator = administer("audit.checkpoint", change)
    except BaseException:
        if replaced:  # the commit failed: the file follows the database back
            _restore_site_file(instance, replaced[0])
        raise
    app_state.site_id = site_id
    _signed_checkpoint(operator)  # the first one under the new id, over the change
    click.echo(f"audit site id changed: {old} -> {site_id} (restart qms serve and qms jobs)")


def _restore_site_file(instance: Path, previous: str | None) -> None:
    from qms.settings import SITE_ID_FILE

    site_file = instance / SITE_ID_FILE
    if previous is None:
        site_file.unlink(missing_ok=True)
    else:
        site_file.write_text(f"{previous}\n")


def _progress(label: str):
    def report(done: int) -> None:
        click.echo(f"\r{label}: {done} events", nl=False, err=True)
    return report
