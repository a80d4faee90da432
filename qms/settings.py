"""Configuration: bundled config/default.toml, then the file named by QMS_CONFIG, then
QMS_<SECTION>_<KEY> environment variables, then the test config passed to create_app.

Settings are flat Flask config keys named SECTION_KEY (``[database] url`` -> DATABASE_URL).
Environment values are converted to the type of the default; a key that is not in
default.toml is refused, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import os
import re
import secrets
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from qms.bundled import bundled_path

ENV_PREFIX = "QMS_"
# environment variables of the automation contract that are not settings
NON_SETTING_ENV = {"QMS_CONFIG", "QMS_INSTANCE_PATH", "QMS_ADMIN_PASSWORD", "QMS_OPERATOR",
                   "QMS_OPERATOR_PASSWORD", "QMS_TEST_POSTGRES_URL", "QMS_BENCH_POSTGRES_URL"}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def config_dir() -> Path:
    return bundled_path("config")


def load_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def flatten(document: Mapping[str, Any]) -> dict[str, Any]:
    """{"database": {"url": x}} -> {"DATABASE_URL": x}."""
    flat = {}
    for section, values in document.items():
        if not isinstance(values, dict):
            raise ConfigError(f"top-level key {section!r} must be a [section]")
        for key, value in values.items():
            flat[f"{section}_{key}".upper()] = value
    return flat


def load_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Defaults, overridden by QMS_CONFIG's file and the environment; validated."""
    settings = flatten(load_toml(config_dir() / "default.toml"))
    if environ.get("QMS_CONFIG"):
        _override(settings, flatten(load_toml(Path(environ["QMS_CONFIG"]))), "QMS_CONFIG file")
    _override(settings, _from_environment(settings, environ), "environment")
    return settings


def _override(settings: dict[str, Any], overrides: Mapping[str, Any], source: str) -> None:
    for key, value in overrides.items():
        if key not in settings:
            raise ConfigError(f"unknown setting {key} in {source}")
        default = settings[key]
        if type(value) is not type(default):
            raise ConfigError(f"{key} in {source} must be {type(default).__name__}, "
                              f"got {type(value).__name__}")
        settings[key] = value


def _from_environment(defaults: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_ENV:
            continue
        key = name.removeprefix(ENV_PREFIX)
        if key not in defaults:
            raise ConfigError(f"unknown setting {key} (environment variable {name})")
        values[key] = _convert(key, raw, defaults[key])
    return values


def _convert(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() not in {"true", "false"}:
            raise ConfigError(f"{key} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    return raw


def instance_path(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("QMS_INSTANCE_PATH", "instance")).resolve()


def resolve_paths(settings: dict[str, Any], instance: Path) -> None:
    """Fill the settings whose default depends on the instance folder."""
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'qms.sqlite3'}"
    if not settings["AUDIT_CHECKPOINT_FILE"]:
        settings["AUDIT_CHECKPOINT_FILE"] = str(instance / "audit-checkpoints.jsonl")
    if not settings["AUDIT_SITE_ID"] and (instance / SITE_ID_FILE).exists():
        settings["AUDIT_SITE_ID"] = (instance / SITE_ID_FILE).read_text().strip()
    if not settings["AUDIT_ROOT_KEY_ID"] and (instance / ROOT_KEY_ID_FILE).exists():
        settings["AUDIT_ROOT_KEY_ID"] = (instance / ROOT_KEY_ID_FILE).read_text().strip()
    if not settings["APP_SECRET_KEY"]:
        secret_file = instance / "secret_key"
        if secret_file.exists():
            settings["APP_SECRET_KEY"] = secret_file.read_text().strip()


def validate(settings: Mapping[str, Any]) -> None:
    if settings["SECURITY_PASSWORD_MIN_LENGTH"] < 12:
        raise ConfigError("SECURITY_PASSWORD_MIN_LENGTH may not be below 12")
    if settings["SECURITY_LOCKOUT_THRESHOLD"] < 2:
        raise ConfigError("SECURITY_LOCKOUT_THRESHOLD must be at least 2: one client address "
                          "brings an account at most one failure short of it")
    if not 1 <= settings["SECURITY_API_TOKEN_IDLE_MINUTES"] <= 24 * 60:
        raise ConfigError("SECURITY_API_TOKEN_IDLE_MINUTES must be between 1 and 1440")
    if settings["SECURITY_LOCKOUT_MINUTES"] < 0:
        raise ConfigError("SECURITY_LOCKOUT_MINUTES must be 0 (until unlocked) or more")
    if not 1 <= settings["SECURITY_SESSION_IDLE_MINUTES"] <= 60:
        raise ConfigError("SECURITY_SESSION_IDLE_MINUTES must be between 1 and 60")
    _validate_rate_limits(settings)
    try:
        ZoneInfo(settings["APP_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"APP_TIMEZONE {settings['APP_TIMEZONE']!r} is not an IANA time "
                          "zone name such as 'Europe/Berlin' or 'Asia/Shanghai'") from None
    if settings["AUDIT_SITE_ID"] and not SITE_ID_PATTERN.fullmatch(settings["AUDIT_SITE_ID"]):
        raise ConfigError("AUDIT_SITE_ID must be 1 to 64 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    for key in ("JOBS_LOT_EXPIRY_INTERVAL_MINUTES", "JOBS_CAPA_OVERDUE_INTERVAL_MINUTES",
                "ERP_MAX_ATTEMPTS", "ERP_POLL_SECONDS"):
        if settings[key] < 1:
            raise ConfigError(f"{key} must be at least 1")
    if not 0 < settings["ERP_WEBHOOK_TIMEOUT_SECONDS"] <= 300:
        raise ConfigError("ERP_WEBHOOK_TIMEOUT_SECONDS must be between 0 and 300")
    if not 0 < settings["ERP_BACKOFF_BASE_SECONDS"] <= settings["ERP_BACKOFF_CAP_SECONDS"]:
        raise ConfigError("ERP backoff needs 0 < ERP_BACKOFF_BASE_SECONDS <= "
                          "ERP_BACKOFF_CAP_SECONDS")
    _validate_owner_url(settings["DATABASE_URL"], settings["DATABASE_OWNER_URL"])


def _validate_owner_url(url: str, owner_url: str) -> None:
    """The owner (migration) URL is PostgreSQL's and names the application's own database:
    migrating one database and granting privileges on another would leave both wrong."""
    if not owner_url:
        return
    try:
        app, owner = make_url(url), make_url(owner_url)
    except ArgumentError:
        raise ConfigError("DATABASE_OWNER_URL is not a database URL") from None
    if not app.get_backend_name() == owner.get_backend_name() == "postgresql":
        raise ConfigError("DATABASE_OWNER_URL applies to PostgreSQL only (SQLite has no roles); "
                          "DATABASE_URL and DATABASE_OWNER_URL must both be postgresql:// URLs")
    if (app.host, app.port, app.database) != (owner.host, owner.port, owner.database):
        raise ConfigError("DATABASE_OWNER_URL must name the same server and database as "
                          "DATABASE_URL (only the role differs)")


def _validate_rate_limits(settings: Mapping[str, Any]) -> None:
    from limits import parse_many
    from limits.storage import MovingWindowSupport, storage_from_string

    from qms.identity.throttle import policy_problems

    for key in ("RATELIMIT_FAILURES_PER_ADDRESS", "RATELIMIT_FAILURES_PER_USERNAME",
                "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"):
        try:
            parse_many(settings[key])
        except ValueError:
            raise ConfigError(f"{key} {settings[key]!r} is not a rate limit such as "
                              "'30 per 15 minutes'") from None
    try:
        storage = storage_from_string(settings["RATELIMIT_STORAGE_URI"])
    except Exception as error:  # unknown scheme, or its client library missing
        raise ConfigError(f"RATELIMIT_STORAGE_URI: {error}") from None
    if not isinstance(storage, MovingWindowSupport):
        raise ConfigError(f"RATELIMIT_STORAGE_URI: {settings['RATELIMIT_STORAGE_URI']!r} keeps "
                          "no moving windows; use memory:// or redis://")
    problems = policy_problems(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    if not 1 <= settings["RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES"] <= 24 * 60:
        raise ConfigError("RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES must be between 1 and 1440")
    if settings["SERVER_PROXY_HOPS"] < 0:
        raise ConfigError("SERVER_PROXY_HOPS must be 0 or more")


def site_today(settings: Mapping[str, Any]) -> date:
    """Today's date where the site is: expiry and due dates are calendar days there."""
    return datetime.now(ZoneInfo(settings["APP_TIMEZONE"])).date()


SITE_ID_FILE = "site_id"
ROOT_KEY_ID_FILE = "audit_root_key_id"  # the trust root's key id, written by `qms init`
SITE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def write_site_id(instance: Path) -> str:
    """Generate the instance's audit site id once (qms init); never overwrites."""
    site_file = instance / SITE_ID_FILE
    if not site_file.exists():
        site_file.write_text(f"site-{secrets.token_hex(8)}\n")
    return site_file.read_text().strip()


def write_root_key_id(instance: Path, root_key_id: str) -> bool:
    """Record the trust root's key id once (qms init, for a trail not yet signed); True
    when written now. Never overwrites."""
    root_file = instance / ROOT_KEY_ID_FILE
    if root_file.exists():
        return False
    root_file.write_text(f"{root_key_id}\n")
    return True


def replace_site_id(instance: Path, site: str) -> str | None:
    """Write ``site`` as the instance's site id, atomically; return the id the file held
    (None: there was no file). Only for `qms audit set-site-id`, which records the change
    in the audit trail and puts the old file back if that fails."""
    if not SITE_ID_PATTERN.fullmatch(site):
        raise ConfigError("a site id is 1 to 64 letters, digits, '.', '_' or '-', starting "
                          "with a letter or digit")
    site_file = instance / SITE_ID_FILE
    previous = site_file.read_text().strip() if site_file.exists() else None
    temporary = site_file.with_name(f".{SITE_ID_FILE}.{os.getpid()}.tmp")
    temporary.write_text(f"{site}\n")
    os.replace(temporary, site_file)
    return previous


def write_secret_key(instance: Path) -> None:
    """Generate the instance's secret key once (qms init); never overwrites."""
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)  # holds the SQLite database, keys and secrets
    secret_file = instance / "secret_key"
    if not secret_file.exists():
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
