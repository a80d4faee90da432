"""Parallel wrong guesses cannot outrun the lockout: failure counts queue on the user's row.
The guesses come from eight addresses, as a lockout takes more than one (one address may fail
only four times at an account)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from qms.identity.models import User


def test_parallel_wrong_passwords_still_lock_the_account(app, make_user):
    victim = make_user("victim", "auditor")

    def guess(attempt: int) -> int:
        response = app.test_client().post(
            "/api/v1/auth/tokens", json={"username": "victim", "password": "guessing-wrong-1"},
            environ_base={"REMOTE_ADDR": f"192.0.2.{attempt % 8 + 1}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(16)))
    assert set(statuses) <= {401, 423} and 423 in statuses
    with app.extensions["qms"].db.reading() as session:
        failed, locked_at = session.execute(select(User.failed_attempts, User.locked_at)
                                            .where(User.username == "victim")).one()
    assert failed == 5 and locked_at is not None  # counted exactly up to the threshold
    right = app.test_client().post("/api/v1/auth/tokens",
                                   json={"username": "victim", "password": victim.password})
    assert right.status_code == 423
