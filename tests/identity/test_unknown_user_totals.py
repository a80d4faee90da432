"""Failures at unknown usernames are audited in summary, and the trail tells every interval's
total (issue 9, point 11): per client and interval, the 1st, 10th, 100th, ... failure writes
an event while it goes on; once the interval has ended, `qms jobs` writes one event with its
total; never one event per guess."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from qms.identity.models import UnknownUserTally
from qms.identity.unknown_users import close_ended_intervals, count_failure
from qms.jobs import total_unknown_user_failures
from tests.identity.test_login_and_lockout import events
from tests.identity.test_rate_limits import token_request

INTERVAL = timedelta(minutes=15)
TEN_PAST = datetime(2026, 3, 2, 10, 10, tzinfo=timezone.utc)  # in the interval from 10:00


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_FAILURES_PER_ADDRESS": "100 per hour"}


@pytest.fixture
def in_transaction(app):
    """in_transaction(work) -> work(session), committed, inside the app."""
    def run(work):
        with app.app_context(), app.extensions["qms"].db.unit_of_work() as session:
            return work(session)
    return run


def fail(session, client: str, username: str, at: datetime) -> None:
    count_failure(session, client=client, username=username, purpose="login",
                  interval=INTERVAL, now=at)


def test_an_ended_interval_is_audited_once_with_its_total(app, in_transaction):
    def guesses(session):
        for n in range(12):
            fail(session, "192.0.2.1", f"ghost{n}", TEN_PAST + timedelta(seconds=n))
        fail(session, "192.0.2.2", "phantom", TEN_PAST)
    in_transaction(guesses)
    # while the interval runs: the 1st and the 10th failure of each client, no total
    assert [(e.data["client"], e.data["failures_in_interval"])
            for e in events(app, "identity.login.failed")] == [
        ("192.0.2.1", 1), ("192.0.2.1", 10), ("192.0.2.2", 1)]
    still_running = TEN_PAST + timedelta(minutes=4)
    assert in_transaction(lambda s: close_ended_intervals(s, interval=INTERVAL,
                                                          now=still_running)) == []
    ended = TEN_PAST + timedelta(minutes=5)
    in_transaction(lambda s: close_ended_intervals(s, interval=INTERVAL, now=ended))
    totals = events(app, "identity.login.failed_total")
    assert [(e.actor, e.data) for e in totals] == [
        ("system", {"why": "unknown user", "client": "192.0.2.1",
                    "interval_start": "2026-03-02T10:00:00.000000Z",
                    "interval_end": "2026-03-02T10:15:00.000000Z", "failures": 12,
                    "last_username": "ghost11",
                    "last_failure_at": "2026-03-02T10:10:11.000000Z"}),
        ("system", {"why": "unknown user", "client": "192.0.2.2",
                    "interval_start": "2026-03-02T10:00:00.000000Z",
                    "interval_end": "2026-03-02T10:15:00.000000Z", "failures": 1,
                    "last_username": "phantom",
                    "last_failure_at": "2026-03-02T10:10:00.000000Z"})]
    # closed once: a later pass writes nothing
    assert in_transaction(lambda s: close_ended_intervals(s, interval=INTERVAL,
                                                          now=ended + INTERVAL)) == []
    assert len(events(app, "identity.login.failed_total")) == 2


def test_a_failure_after_its_interval_was_totalled_is_audited_on_its_own(app, in_transaction):
    in_transaction(lambda s: fail(s, "192.0.2.1", "ghost", TEN_PAST))
    in_transaction(lambda s: close_ended_intervals(s, interval=INTERVAL,
                                                   now=TEN_PAST + INTERVAL))
    # a check that began before 10:15 and reached its tally after the job had run
    in_transaction(lambda s: fail(s, "192.0.2.1", "spectre", TEN_PAST + timedelta(minutes=4)))
    late = events(app, "identity.login.failed")[-1]
    assert late.data["username"] == "spectre" and late.data["after_interval_total"] is True
    # the next interval opens a new tally with its own first event
    in_transaction(lambda s: fail(s, "192.0.2.1", "wraith", TEN_PAST + INTERVAL))
    opened = events(app, "identity.login.failed")[-1]
    assert opened.data["failures_in_interval"] == 1
    assert opened.data["interval_start"] == "2026-03-02T10:15:00.000000Z"


def test_the_scheduled_job_totals_what_the_sign_in_failures_left_open(app, client,
                                                                     in_transaction):
    for n in range(12):
        assert token_request(client, f"ghost{n}", "wrong password 1").status_code == 401
    token_request(client, "phantom", "wrong password 1", address="192.0.2.99")

    def a_day_earlier(session):  # as if the interval had ended a day ago (no waiting)
        for tally in session.scalars(select(UnknownUserTally)):
            tally.interval_start -= timedelta(days=1)
    in_transaction(a_day_earlier)

    assert total_unknown_user_failures(app) >= 2
    per_client: dict[str, int] = {}
    for total in events(app, "identity.login.failed_total"):
        per_client[total.data["client"]] = per_client.get(total.data["client"], 0) \
            + total.data["failures"]
    assert per_client == {"192.0.2.1": 12, "192.0.2.99": 1}
    assert total_unknown_user_failures(app) == 0  # each interval is totalled once
