"""One client address cannot lock an account by itself, however long it keeps guessing and
however many server processes count its attempts; a distributed attack still ends in the
lockout (issue 9, point 11). Shipped settings: 5 failures lock, of which one address counts
at most 4, and it may fail 4 times per 30 minutes at one username before it gets 429."""
from __future__ import annotations

import pytest

from qms.app import create_app
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
    # the attempt is reported at once, by the failure that used up the address's share
    [reported] = events(app, "identity.login.client_limit_reached")
    assert reported.actor == "system" and reported.entity_id == "admin.olga"
    assert reported.data == {"urgent": True, "purpose": "token", "client": "192.0.2.1",
                             "username": "admin.olga", "failures_from_client": 4}
    # the administrator signs in from their own computer meanwhile
    assert token_request(client, "admin.olga", admin.password,
                         address="198.51.100.7").status_code == 201


def test_an_ipv6_client_cannot_lock_an_account_from_its_64(app, client, make_user):
    make_user("admin.pia", "admin")
    statuses = [token_request(client, "admin.pia", "wrong password 1",
                              address=f"2001:db8:0:7::{n:x}").status_code for n in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert events(app, "identity.user.locked") == []


def test_failures_after_the_rate_limit_window_do_not_add_up_to_a_lockout(app, client,
                                                                         make_user):
    """An address that waits for its rate-limit allowance to come back keeps guessing, but
    its failures beyond four no longer count toward the lockout; they are still audited."""
    make_user("admin.quinn", "admin")
    for _half_hour in range(3):
        statuses = [token_request(client, "admin.quinn", "wrong password 1").status_code
                    for _ in range(4)]
        assert statuses == [401, 401, 401, 401]
        app.extensions["qms"].security.throttle.storage.reset()  # as if 30 minutes passed
    assert failed_attempts(app, "admin.quinn") == 4
    assert events(app, "identity.user.locked") == []
    failures = events(app, "identity.login.failed")
    assert [e.data["counted"] for e in failures] == [True] * 4 + [False] * 8
    assert len(events(app, "identity.login.client_limit_reached")) == 1


def test_one_address_cannot_lock_an_account_through_several_server_processes(app_config,
                                                                             make_user):
    """With `memory://` each process counts its own rate limits, so one address gets each
    process's allowance; the account's share per address is counted in the database."""
    make_user("admin.rita", "admin")
    workers = [create_app(app_config) for _ in range(2)]
    try:
        statuses = [token_request(worker.test_client(), "admin.rita", "wrong password 1")
                    .status_code for worker in workers for _ in range(4)]
    finally:
        for worker in workers:
            worker.extensions["qms"].db.dispose()
    assert statuses == [401] * 8
    assert [e.data["counted"] for e in events(workers[0], "identity.login.failed")] == \
        [True] * 4 + [False] * 4
    assert events(workers[0], "identity.user.locked") == []


def test_a_distributed_attack_still_ends_in_the_lockout(app, client, make_user):
    admin = make_user("admin.sina", "admin")
    statuses = [token_request(client, "admin.sina", "wrong password 1",
                              address=address).status_code
                for address in ["192.0.2.1"] * 4 + ["203.0.113.9"]]
    assert statuses == [401, 401, 401, 401, 423]
    [locked] = events(app, "identity.user.locked")
    assert locked.data["urgent"] is True and locked.data["lockout_minutes"] == 30
    assert token_request(client, "admin.sina", admin.password,
                         address="198.51.100.7").status_code == 423


@pytest.mark.parametrize("settings, named", [
    # an address allowed as many failures as lock: it guesses on once they stop counting
    ({"RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "5 per 30 minutes"},
     "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"),
    ({"SECURITY_LOCKOUT_THRESHOLD": 4}, "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"),
    # fewer failures per username than lock: never a lockout, never its urgent event
    ({"RATELIMIT_FAILURES_PER_USERNAME": "4 per 15 minutes"}, "RATELIMIT_FAILURES_PER_USERNAME"),
    # one address (4 per 30 minutes, so 8 an hour) could use up a username for everyone
    ({"RATELIMIT_FAILURES_PER_USERNAME": "8 per hour"}, "RATELIMIT_FAILURES_PER_USERNAME"),
    # one failure cannot lock when one address may count only threshold - 1
    ({"SECURITY_LOCKOUT_THRESHOLD": 1}, "SECURITY_LOCKOUT_THRESHOLD"),
])
def test_rate_limits_incoherent_with_the_lockout_are_refused(app_config, settings, named):
    with pytest.raises(ConfigError, match=named):
        create_app({**app_config, **settings})


def test_a_lower_threshold_starts_with_a_lower_allowance(app_config):
    app = create_app({**app_config, "SECURITY_LOCKOUT_THRESHOLD": 3,
                      "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "2 per 30 minutes"})
    app.extensions["qms"].db.dispose()
