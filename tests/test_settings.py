"""Configuration: defaults, file, environment, types, and the secret-key rule."""
from __future__ import annotations

import pytest

from qms.app import create_app
from qms.settings import ConfigError, load_settings


def test_every_default_is_documented_by_a_comment():
    from qms.settings import config_dir

    lines = (config_dir() / "default.toml").read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("["):
            previous = lines[number - 1].lstrip()
            assert previous.startswith("#") or "=" in previous, f"undocumented: {line}"


def test_environment_overrides_with_the_default_type():
    settings = load_settings({"QMS_SECURITY_LOCKOUT_THRESHOLD": "3",
                              "QMS_SECURITY_SECURE_COOKIES": "true"})
    assert settings["SECURITY_LOCKOUT_THRESHOLD"] == 3
    assert settings["SECURITY_SECURE_COOKIES"] is True


@pytest.mark.parametrize("environ, message", [
    ({"QMS_SECURITY_LOCKOUT_THRESHOLD": "three"}, "integer"),
    ({"QMS_SECURITY_SECURE_COOKIES": "yes"}, "true or false"),
    ({"QMS_NO_SUCH_SETTING": "1"}, "unknown setting"),
])
def test_bad_environment_is_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_config_file_overrides_and_type_checks(tmp_path):
    good = tmp_path / "site.toml"
    good.write_text('[app]\nsite_name = "Plant 7"\n')
    assert load_settings({"QMS_CONFIG": str(good)})["APP_SITE_NAME"] == "Plant 7"
    bad = tmp_path / "bad.toml"
    bad.write_text("[security]\nlockout_threshold = \"5\"\n")
    with pytest.raises(ConfigError, match="must be int"):
        load_settings({"QMS_CONFIG": str(bad)})


def test_refuses_to_start_without_a_secret_key_outside_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("QMS_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(ConfigError, match="secret key"):
        create_app()


def test_password_minimum_cannot_go_below_12(tmp_path):
    with pytest.raises(ConfigError, match="below 12"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                    "SECURITY_PASSWORD_MIN_LENGTH": 8})


def test_the_site_time_zone_must_be_an_iana_name():
    from qms.settings import validate

    for name in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
        with pytest.raises(ConfigError, match="IANA time zone"):
            validate(load_settings({"QMS_APP_TIMEZONE": name}))
    validate(load_settings({"QMS_APP_TIMEZONE": "Asia/Shanghai"}))


def test_site_today_is_the_calendar_day_in_the_site_time_zone():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from qms.settings import site_today

    settings = {"APP_TIMEZONE": "Pacific/Kiritimati"}  # UTC+14: often a day ahead of UTC
    assert site_today(settings) == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()


@pytest.mark.parametrize("url, owner_url, message", [
    ("sqlite:////tmp/qms.sqlite3", "postgresql://qms_owner@db/qms", "PostgreSQL only"),
    ("postgresql://qms_app@db/qms", "postgresql://qms_owner@db/other", "same server and database"),
    ("postgresql://qms_app@db/qms", "postgresql://qms_owner@db2/qms", "same server and database"),
    ("postgresql://qms_app@db/qms", "not a url", "not a database URL"),
])
def test_owner_url_must_be_postgresql_and_name_the_same_database(url, owner_url, message):
    from qms.settings import validate

    with pytest.raises(ConfigError, match=message):
        validate(load_settings({"QMS_DATABASE_URL": url, "QMS_DATABASE_OWNER_URL": owner_url}))
    validate(load_settings({"QMS_DATABASE_URL": "postgresql://qms_app@db:5432/qms",
                            "QMS_DATABASE_OWNER_URL": "postgresql://qms_owner:pw@db:5432/qms"}))
