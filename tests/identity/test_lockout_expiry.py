"""A lockout ends after [security] lockout_minutes (default 30), audited; 0 keeps it until an
administrator acts (issue 9, point 11)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from qms.app import create_app
from qms.db import utcnow
from qms.identity.passwords import UNTIL_UNLOCKED
from qms.settings import ConfigError
from qms.identity.models import User
from tests.identity.test_login_and_lockout import events, failed_attempts, wrong_guesses


def lock_out(client, username: str) -> None:
    assert wrong_guesses(client, username, 5)[-1] == 423


def back_date_lockout(app, username: str, minutes: int) -> None:
    """As if the lockout had begun ``minutes`` ago (no waiting in tests)."""
    with app.extensions["qms"].db.unit_of_work() as session:
        session.execute(update(User).where(User.username == username)
                        .values(locked_at=utcnow() - timedelta(minutes=minutes)))


def token_request(client, user):
    return client.post("/api/v1/auth/tokens",
                       json={"username": user.username, "password": user.password})


def test_a_lockout_ends_after_the_configured_minutes(app, client, make_user):
    erin = make_user("erin", "auditor")
    lock_out(client, "erin")
    back_date_lockout(app, "erin", minutes=29)
    assert token_request(client, erin).status_code == 423  # not yet
    back_date_lockout(app, "erin", minutes=30)
    assert token_request(client, erin).status_code == 201
    assert failed_attempts(app, "erin") == 0
    [unlocked] = events(app, "identity.user.unlocked")
    assert unlocked.actor == "system" and unlocked.entity_id == "erin"
    assert unlocked.data["why"] == "lockout expired" and unlocked.data["lockout_minutes"] == 30


def test_after_an_expired_lockout_the_count_starts_again(app, client, make_user):
    make_user("fred", "auditor")
    lock_out(client, "fred")
    back_date_lockout(app, "fred", minutes=31)
    wrong = client.post("/api/v1/auth/tokens",
                        json={"username": "fred", "password": "still-not-the-password"})
    assert wrong.status_code == 401
    assert failed_attempts(app, "fred") == 1


def test_lockout_minutes_zero_means_until_an_administrator_unlocks(app, client, make_user):
    security = app.extensions["qms"].security
    security.policy = replace(security.policy, lockout_minutes=UNTIL_UNLOCKED)
    gina = make_user("gina", "auditor")
    lock_out(client, "gina")
    back_date_lockout(app, "gina", minutes=60 * 24 * 365)
    refused = token_request(client, gina)
    assert refused.status_code == 423
    assert "ask an administrator" in refused.get_json()["detail"]
    assert events(app, "identity.user.unlocked") == []


def test_lockout_minutes_must_not_be_negative(app_config):
    with pytest.raises(ConfigError, match="SECURITY_LOCKOUT_MINUTES"):
        create_app({**app_config, "SECURITY_LOCKOUT_MINUTES": -1})
