"""Fixtures of the validation tests: an instance installed the way `qms init` leaves it, and
small handmade JUnit XML files."""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from sqlalchemy import text

from qms.settings import write_secret_key

# (table, trigger) that guards audit events against UPDATE, per backend
EVENT_UPDATE_GUARD = {"sqlite": ("audit_events", "audit_events_no_update"),
                      "postgresql": ("audit_events", "audit_events_no_change")}


@pytest.fixture
def app_config(app_config):
    """As in production: a secret key file in the instance folder and TESTING off (the IQ
    refuses testing mode)."""
    write_secret_key(Path(app_config["INSTANCE_PATH"]))
    return {**app_config, "TESTING": False}


@pytest.fixture
def installed(app):
    """The app of a fresh instance: migrated database (the shared template), secret key and
    audit signing key written as `qms init` writes them."""
    from qms.bootstrap import ensure_keys

    with app.app_context():
        ensure_keys()
    return app


@pytest.fixture
def drop_event_update_guard(owner_engine, backend):
    """drop_event_update_guard() removes the trigger that refuses UPDATE of audit events, as
    an attacker owning the database would; returns the trigger's name."""
    def drop() -> str:
        table, trigger = EVENT_UPDATE_GUARD[backend]
        suffix = "" if backend == "sqlite" else f" ON {table}"
        with owner_engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER {trigger}{suffix}"))
        return trigger
    return drop


def _case(classname: str, name: str, outcome: str) -> str:
    inner = {"passed": "",
             "failed": '<failure message="assert 1 == 2">traceback</failure>',
             "error": '<error message="fixture broke">traceback</error>',
             "skipped": '<skipped type="pytest.skip" message="no chromium" />'}[outcome]
    return f"<testcase classname={quoteattr(classname)} name={quoteattr(name)} " \
           f'time="0.010">{inner}</testcase>'


@pytest.fixture
def write_junit(tmp_path):
    """write_junit([(classname, name, outcome), ...], name="run.xml") -> path of a pytest-style
    JUnit XML file; outcome is passed, failed, error or skipped."""
    def write(cases, name: str = "run.xml") -> Path:
        body = "".join(_case(*case) for case in cases)
        path = tmp_path / name
        path.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
                        f'<testsuite name="pytest" tests="{len(cases)}" '
                        'timestamp="2026-05-04T10:00:00+00:00" hostname="qa-runner">'
                        f"{body}</testsuite></testsuites>", encoding="utf-8")
        return path
    return write
