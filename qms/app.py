"""The application factory."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import qms.models  # noqa: F401  (registers every model and record type)
from qms.bundled import bundled_path
from qms.context import AppState, close_db_session
from qms.db import Database, make_engine
from qms.erp.wake import wake_after_commit
from qms.identity.roles import load_roles
from qms.identity.security import Security
from qms.materials.numbering import load_numbering
from qms.records.workflow import load_workflows
from qms.settings import ConfigError, config_dir, instance_path, load_settings, resolve_paths, validate


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from config/default.toml, QMS_CONFIG, QMS_* variables and
    ``test_config``. Outside tests it refuses to start without a real secret key."""
    instance = Path(test_config.get("INSTANCE_PATH", instance_path())) if test_config \
        else instance_path()
    settings = load_settings()
    settings.update(test_config or {})
    resolve_paths(settings, instance)
    validate(settings)
    app = Flask("qms", instance_path=str(instance), template_folder=str(bundled_path("templates")))
    app.config.update(settings)
    app.config["SECRET_KEY"] = _secret_key(app)
    _configure_session_cookies(app)
    _trust_proxies(app)
    app.extensions["qms"] = _build_state(app, instance)
    app.teardown_appcontext(close_db_session)
    _register_parts(app)
    return app


def _secret_key(app: Flask) -> str:
    key = app.config["APP_SECRET_KEY"]
    if len(key) < 32 and not app.testing:
        raise ConfigError("no secret key: run `qms init` (it writes instance/secret_key) "
                          "or set QMS_APP_SECRET_KEY to at least 32 random characters")
    return key or "test-only-secret-key-not-for-production-use"


def _configure_session_cookies(app: Flask) -> None:
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=app.config["SECURITY_SECURE_COOKIES"],
                      SESSION_COOKIE_NAME="qms_session",
                      MAX_CONTENT_LENGTH=app.config["APP_MAX_REQUEST_BYTES"])


def _trust_proxies(app: Flask) -> None:
    """Take the client's address from X-Forwarded-For only as far as configured proxies
    vouch for it (rate limits are per address; anyone can send the header)."""
    hops = app.config["SERVER_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)


def _build_state(app: Flask, instance: Path) -> AppState:
    settings = app.config
    roles = load_roles(config_dir() / "roles.toml")
    workflows = load_workflows(config_dir() / "workflows.toml", roles)
    engine = make_engine(settings["DATABASE_URL"],
                         busy_timeout_ms=settings["DATABASE_SQLITE_BUSY_TIMEOUT_MS"],
                         synchronous=settings["DATABASE_SQLITE_SYNCHRONOUS"])
    db = Database(engine)
    wake_after_commit(db, instance)  # SQLite: ERP delivery starts at commit, not at the poll
    return AppState(db=db, security=Security.from_settings(settings, roles),
                    workflows=workflows, audit_key_path=instance / "keys" / "audit-ed25519.pem",
                    checkpoint_file=Path(settings["AUDIT_CHECKPOINT_FILE"]),
                    site_id=settings["AUDIT_SITE_ID"],
                    root_key_id=settings["AUDIT_ROOT_KEY_ID"],
                    numbering=load_numbering(config_dir() / "numbering.toml"))


def _register_parts(app: Flask) -> None:
    from qms import cli
    from qms.api import init_api
    from qms.release import init_release
    from qms.web import init_web

    init_web(app)  # first: it installs CSRF protection, from which the API is exempt
    init_release(app)  # loads config/release.toml; its route joins the API blueprint
    init_api(app)
    cli.init_cli(app)
