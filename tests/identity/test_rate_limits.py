"""Failed credential checks are rate-limited per client address, per username and per both
(issue 9, point 11): over the limit the answer is 429 problem+json with Retry-After, nothing
is hashed or written, and a header any client can send does not buy a fresh allowance."""
from __future__ import annotations

import math

import pytest

from qms.app import create_app
from qms.identity.throttle import wait_phrase
from qms.settings import ConfigError
from tests.identity.test_login_and_lockout import events, failed_attempts


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_FAILURES_PER_ADDRESS": "3 per hour",
            "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "2 per hour",
            "RATELIMIT_FAILURES_PER_USERNAME": "5 per hour"}


def token_request(client, username: str, password: str, address: str = "192.0.2.1",
                  **headers):
    return client.post("/api/v1/auth/tokens", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def test_an_address_over_its_failures_gets_429_with_retry_after(app, client, make_user,
                                                               db_snapshot):
    hana = make_user("hana", "auditor")
    guesses = [token_request(client, name, "wrong password 1").status_code
               for name in ("hana", "ghost", "nobody")]
    assert guesses == [401, 401, 401]
    before = db_snapshot()
    throttled = token_request(client, "hana", hana.password)  # even the right password
    assert throttled.status_code == 429
    assert throttled.mimetype == "application/problem+json"
    assert throttled.get_json()["type"].endswith("/too-many-attempts")
    seconds = int(throttled.headers["Retry-After"])
    assert 60 < seconds <= 3600
    # the person reads minutes, the header keeps seconds
    assert throttled.get_json()["detail"].endswith(
        f"try again in {math.ceil(seconds / 60)} minutes")
    assert db_snapshot() == before  # nothing counted, audited or locked
    assert token_request(client, "hana", hana.password, address="192.0.2.2").status_code == 201


def test_an_ipv6_client_is_counted_by_its_64_network(app, client, make_user):
    """A client chooses freely among the 2**64 addresses of its network: rotating them
    neither escapes the address limit nor writes one unknown-user event per guess."""
    guesses = [token_request(client, f"ghost{i}", "wrong password 1",
                             address=f"2001:db8:0:7::{i:x}").status_code for i in range(4)]
    assert guesses == [401, 401, 401, 429]
    other_network = token_request(client, "ghost9", "wrong password 1", address="2001:db8:0:8::1")
    assert other_network.status_code == 401
    assert [e.data["client"] for e in events(app, "identity.login.failed")] == [
        "2001:db8:0:7::/64", "2001:db8:0:8::/64"]


def test_a_username_over_its_failures_gets_429_from_any_address(app, client, make_user):
    """The per-username allowance reaches the lockout threshold (a distributed attack ends in
    the lockout and its urgent event); past it, guessing at the locked name costs nothing."""
    make_user("admin.ivy", "admin")
    statuses = [token_request(client, "admin.ivy", "wrong password 1",
                              address=f"192.0.2.{10 + n}").status_code for n in range(7)]
    assert statuses == [401, 401, 401, 401, 423, 429, 429]
    assert failed_attempts(app, "admin.ivy") == 5
    assert len(events(app, "identity.user.locked")) == 1


@pytest.mark.parametrize("variant", ["SAM", "Sam", " sam", "sam ", "sam\n"])
def test_a_name_that_cannot_be_a_username_counts_only_for_its_address(app, client, make_user,
                                                                      variant):
    """Usernames are lowercase and found exactly: "SAM" names no account, so guessing at it
    from many addresses must not use up sam's per-username allowance (sam throttled, never
    locked, no urgent event). Each such failure counts for its address, and is an unknown
    user's (audited in summary); the dummy hash still runs, so timing tells nothing."""
    sam = make_user("sam", "auditor")
    statuses = [token_request(client, variant, f"guess {n}",
                              address=f"198.51.100.{n // 2 + 1}").status_code
                for n in range(12)]
    assert statuses == [401] * 12
    assert token_request(client, "sam", sam.password, address="203.0.113.7").status_code == 201
    assert failed_attempts(app, "sam") == 0
    assert [e.data["why"] for e in events(app, "identity.login.failed")] == \
        ["unknown user"] * 6  # the first failure of each address's interval
    # the address itself is still limited: 3 failures per hour
    assert [token_request(client, variant, f"more {n}", address="198.51.100.99").status_code
            for n in range(4)] == [401, 401, 401, 429]


def test_successful_checks_are_not_counted(client, make_user):
    jack = make_user("jack", "auditor")
    assert [token_request(client, "jack", jack.password).status_code
            for _ in range(5)] == [201] * 5


def test_x_forwarded_for_is_not_trusted_unless_configured(client, make_user):
    make_user("kate", "auditor")
    statuses = [token_request(client, f"kate{n}", "wrong password 1",
                              **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                for n in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_behind_a_configured_proxy_the_forwarded_address_counts(app_config):
    app = create_app({**app_config, "SERVER_PROXY_HOPS": 1})
    client = app.test_client()
    try:
        statuses = [token_request(client, f"kate{n}", "wrong password 1",
                                  **{"X-Forwarded-For": f"198.51.100.{n % 2}"}).status_code
                    for n in range(6)]
    finally:
        app.extensions["qms"].db.dispose()
    assert statuses == [401] * 6  # two clients behind the proxy, three failures each


def test_disabled_rate_limits_count_nothing(app_config):
    app = create_app({**app_config, "RATELIMIT_ENABLED": False})
    client = app.test_client()
    try:
        statuses = [token_request(client, f"lena{n}", "wrong password 1").status_code
                    for n in range(5)]
    finally:
        app.extensions["qms"].db.dispose()
    assert statuses == [401] * 5


@pytest.mark.parametrize("key, value", [("RATELIMIT_FAILURES_PER_ADDRESS", "lots"),
                                        ("RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME", "lots"),
                                        ("RATELIMIT_STORAGE_URI", "nowhere://"),
                                        ("SERVER_PROXY_HOPS", -1)])
def test_bad_rate_limit_settings_refuse_to_start(app_config, key, value):
    with pytest.raises(ConfigError, match=key):
        create_app({**app_config, key: value})


@pytest.mark.parametrize("seconds, phrase", [(1, "1 second"), (59, "59 seconds"),
                                             (60, "1 minute"), (61, "2 minutes"),
                                             (900, "15 minutes")])
def test_the_wait_is_said_in_minutes_from_a_minute_on(seconds, phrase):
    assert wait_phrase(seconds) == phrase


def unknown_user_events(app):
    return [e for e in events(app, "identity.login.failed") if e.actor == "anonymous"]


def test_unknown_user_failures_are_audited_in_summary_per_client(app_config):
    app = create_app({**app_config, "RATELIMIT_FAILURES_PER_ADDRESS": "100 per hour"})
    client = app.test_client()
    try:
        for n in range(12):
            assert token_request(client, f"ghost{n}", "wrong password 1").status_code == 401
        token_request(client, "phantom", "wrong password 1", address="192.0.2.99")
        summary = unknown_user_events(app)
    finally:
        app.extensions["qms"].db.dispose()
    assert [(e.data["client"], e.data["failures_in_interval"], e.data["username"])
            for e in summary] == [("192.0.2.1", 1, "ghost0"), ("192.0.2.1", 10, "ghost9"),
                                  ("192.0.2.99", 1, "phantom")]
    assert all(e.data["why"] == "unknown user" and e.data["interval_start"].endswith("Z")
               for e in summary)
