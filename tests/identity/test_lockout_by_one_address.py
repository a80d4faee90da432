"""One client address cannot lock an account by itself, however long it keeps guessing; a
distributed attack still ends in the lockout (issue 9, point 11). The shipped settings: an
address may fail 4 times per 30 minutes at one username, 5 failures within 15 minutes lock."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from qms.app import create_app
from qms.db import utcnow
from qms.identity.models import User
from qms.settings import ConfigError
from tests.identity.test_login_and_lockout import events, failed_attempts
from tests.identity.test_rate_limits import token_request


def test_one_address_cannot_lock_an_account(app, client, make_user):
    admin = make_user("admin.olga", "admin")
    statuses = [token_request(client, "admin.olga", "wrong password 1").status_code
                for _ in range(7)]
    assert statuses == [401, 401, 401, 401, 429, 429, 429]
    assert failed_attempts(app, "admin.olga") == 4
    assert events(app, "identity.user.locked") == []
    # the attempt is reported at once, by the failure that used up the address's allowance
    [throttled] = events(app, "identity.login.throttled")
    assert throttled.actor == "system" and throttled.entity_id == "admin.olga"
    assert throttled.data == {"urgent": True, "purpose": "token", "client": "192.0.2.1",
                              "username": "admin.olga", "failed_attempts": 4}
    # the administrator signs in from their own computer meanwhile
    assert token_request(client, "admin.olga", admin.password,
                         address="198.51.100.7").status_code == 201


def test_an_ipv6_client_cannot_lock_an_account_from_its_64(app, client, make_user):
    make_user("admin.pia", "admin")
    statuses = [token_request(client, "admin.pia", "wrong password 1",
                              address=f"2001:db8:0:7::{n:x}").status_code for n in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert events(app, "identity.user.locked") == []


def forget_the_last_half_hour(app, username: str) -> None:
    """As if 30 minutes had passed (no waiting in tests): the rate-limit windows are empty
    and the account's failures began that long ago."""
    state = app.extensions["qms"]
    state.security.throttle.storage.reset()
    with state.db.unit_of_work() as session:
        session.execute(update(User).where(User.username == username)
                        .values(failures_since=utcnow() - timedelta(minutes=30)))


def test_failures_spread_over_hours_do_not_add_up_to_a_lockout(app, client, make_user):
    """An address that waits for its allowance to come back each time never locks the
    account: failures count toward the lockout only within [security] lockout_window_minutes
    of the first of them."""
    make_user("admin.quinn", "admin")
    for _half_hour in range(3):
        statuses = [token_request(client, "admin.quinn", "wrong password 1").status_code
                    for _ in range(4)]
        assert statuses == [401, 401, 401, 401]
        assert failed_attempts(app, "admin.quinn") == 4
        forget_the_last_half_hour(app, "admin.quinn")
    assert events(app, "identity.user.locked") == []


def test_a_distributed_attack_still_ends_in_the_lockout(app, client, make_user):
    admin = make_user("admin.rosa", "admin")
    statuses = [token_request(client, "admin.rosa", "wrong password 1",
                              address=address).status_code
                for address in ["192.0.2.1"] * 4 + ["203.0.113.9"]]
    assert statuses == [401, 401, 401, 401, 423]
    [locked] = events(app, "identity.user.locked")
    assert locked.data["urgent"] is True and locked.data["lockout_minutes"] == 30
    assert token_request(client, "admin.rosa", admin.password,
                         address="198.51.100.7").status_code == 423


@pytest.mark.parametrize("settings, named", [
    # as many failures per address as the threshold: one address locks
    ({"RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "5 per 30 minutes"},
     "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"),
    # a window shorter than the lockout's: one address adds up 4 + 4 within 15 minutes
    ({"RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "4 per 5 minutes"},
     "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"),
    # a lower threshold, the shipped allowance: one address locks
    ({"SECURITY_LOCKOUT_THRESHOLD": 4}, "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"),
    # fewer failures per username than the threshold: never a lockout, never its urgent event
    ({"RATELIMIT_FAILURES_PER_USERNAME": "4 per 15 minutes"}, "RATELIMIT_FAILURES_PER_USERNAME"),
    # one address (4 per 30 minutes, so 8 an hour) could use up a username for everyone
    ({"RATELIMIT_FAILURES_PER_USERNAME": "8 per hour"}, "RATELIMIT_FAILURES_PER_USERNAME"),
])
def test_rate_limits_that_let_one_address_lock_or_shut_out_are_refused(app_config, settings,
                                                                      named):
    with pytest.raises(ConfigError, match=named):
        create_app({**app_config, **settings})


def test_a_site_may_switch_rate_limiting_off_knowingly(app_config):
    app = create_app({**app_config, "RATELIMIT_ENABLED": False,
                      "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "5 per 30 minutes"})
    app.extensions["qms"].db.dispose()
