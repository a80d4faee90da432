"""Parallel guesses cannot overrun a rate limit (issue 9, point 11): of many checks in flight
at once, only as many hash a password as the limit has failures left; the others are refused
with 429 without hashing. Admission counts the checks in flight atomically, so a check that
has not failed yet still holds its place."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.identity.test_login_and_lockout import failed_attempts


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_FAILURES_PER_ADDRESS": "3 per hour"}


@pytest.fixture
def held_hashing(app, monkeypatch):
    """Password checks that reach the hash wait there until ``release`` is set (the real
    hash runs then), so that every request is in flight at the same time; ``inside`` lists
    the checks that reached it."""
    hasher = app.extensions["qms"].security.hasher
    real_verify, inside, release = hasher.verify, [], threading.Event()

    def verify(password, stored):
        inside.append(password)
        release.wait(timeout=120)  # a guard against a hang, not a timing
        return real_verify(password, stored)

    monkeypatch.setattr(hasher, "verify", verify)
    yield inside, release
    release.set()


def burst(held_hashing, request, count: int) -> tuple[int, list[int]]:
    """Runs ``request(n)`` for n in range(count) at once while hashing is held, and answers
    how many reached the hash together and the sorted status codes once the hash is released."""
    inside, release = held_hashing
    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = [pool.submit(request, n) for n in range(count)]
        # every request either waits at the hash or has been answered without it
        deadline = time.monotonic() + 120
        while (len(inside) + sum(a.done() for a in answers) < count
               and time.monotonic() < deadline):
            time.sleep(0.01)
        hashing_at_once = len(inside)
        release.set()
        return hashing_at_once, sorted(a.result() for a in answers)


def guess_body(path: str, n: int) -> dict[str, str]:
    """A wrong password for sam at ``path``: a token request, or a password change (whose
    current password is hashed ahead of its check, and must be admitted before that too)."""
    if path == "/api/v1/auth/password":
        return {"username": "sam", "old_password": f"wrong password {n}",
                "new_password": "a brand new passphrase 42"}
    return {"username": "sam", "password": f"wrong password {n}"}


@pytest.mark.parametrize("path", ["/api/v1/auth/tokens", "/api/v1/auth/password"])
def test_parallel_guesses_hash_no_more_passwords_than_the_limit_allows(app, make_user,
                                                                       held_hashing, path):
    make_user("sam", "auditor")

    def guess(n: int) -> int:
        return app.test_client().post(path, json=guess_body(path, n)).status_code

    hashing_at_once, statuses = burst(held_hashing, guess, 12)
    assert hashing_at_once == 3
    assert statuses == [401] * 3 + [429] * 9
    assert failed_attempts(app, "sam") == 3
    # the three failures now fill the window: the next check waits for the oldest to leave it
    again = app.test_client().post(path, json=guess_body(path, 99))
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 60


def test_a_check_in_flight_holds_its_place_only_while_it_runs(app, make_user, held_hashing):
    """A success frees its place: parallel right passwords beyond the allowance left are
    refused while they overlap, and admitted again once the others have ended."""
    tess = make_user("tess", "auditor")

    def sign_in(_n: int) -> int:
        return app.test_client().post("/api/v1/auth/tokens", json={
            "username": "tess", "password": tess.password}).status_code

    _, statuses = burst(held_hashing, sign_in, 5)
    assert statuses == [201] * 3 + [429] * 2
    assert [sign_in(n) for n in range(5)] == [201] * 5  # one after another: nothing counted
