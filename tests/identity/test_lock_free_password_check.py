"""A password is hashed outside the write lock (issue 9, point 10): while argon2 checks a
guess, other writers go on, and the user's row is locked only to record the outcome.

The hasher is the real argon2 one, observed: its check announces that it has started and
waits until the test has tried another write transaction, so the test asserts an order of
events, never a duration.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from qms.db import Database, make_engine
from qms.identity.models import User
from tests.identity.test_login_and_lockout import failed_attempts


class ObservedHasher:
    """The real hasher; each call of its ``observed`` method (verify, or hash) says it
    started, then waits for the test's go."""

    def __init__(self, real, observed: str = "verify"):
        self.real, self.observed = real, observed
        self.started, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name):
        method = getattr(self.real, name)
        if name != self.observed:
            return method

        def observed_call(*args, **kwargs):
            self.started.set()
            self.go.wait(timeout=60)
            return method(*args, **kwargs)
        return observed_call


@pytest.fixture
def observed_hasher(app):
    security = app.extensions["qms"].security
    security.dummy_hash()  # computed now, not while the test observes
    observed = ObservedHasher(security.hasher)
    security.hasher = observed
    yield observed
    observed.go.set()
    security.hasher = observed.real


def write_beside(app, username: str, *also_locked) -> str:
    """Another write transaction that locks ``username``'s row (and each ``also_locked``
    select) and commits, or reports that it could not (a short busy timeout / NOWAIT makes
    a held lock an error, not a wait)."""
    engine = make_engine(app.config["DATABASE_URL"], busy_timeout_ms=100)
    try:
        with Database(engine).unit_of_work() as session:
            for query in (select(User).where(User.username == username), *also_locked):
                session.scalar(query.with_for_update(nowait=True))
        return "other writer committed"
    except OperationalError:
        return "other writer blocked"
    finally:
        engine.dispose()


def test_another_writer_commits_while_a_wrong_password_is_hashed(app, make_user,
                                                                 observed_hasher):
    make_user("victim", "auditor")
    answers = []

    def guess():
        response = app.test_client().post(
            "/api/v1/auth/tokens", json={"username": "victim", "password": "guessing-wrong-1"})
        answers.append(response.status_code)

    guesser = threading.Thread(target=guess)
    guesser.start()
    assert observed_hasher.started.wait(timeout=60)
    order = ["hash check started", write_beside(app, "victim")]
    observed_hasher.go.set()
    guesser.join(timeout=60)
    assert order == ["hash check started", "other writer committed"]
    assert answers == [401]
    assert failed_attempts(app, "victim") == 1  # still counted
