"""The sign-in form hashes the password before it locks anything (issue 9, point 10): while
a wrong password is being checked, another writer commits."""
from __future__ import annotations

import threading

from tests.identity.test_lock_free_password_check import (  # noqa: F401  (fixture)
    observed_hasher, write_beside)
from tests.identity.test_login_and_lockout import failed_attempts


def test_another_writer_commits_while_a_sign_in_is_hashed(app, client, csrf, make_user,
                                                         observed_hasher):
    make_user("victim", "auditor")
    token = csrf("/login")
    answers = []

    def guess():
        answers.append(client.post("/login", data={"csrf_token": token, "username": "victim",
                                                   "password": "guessing-wrong-1"}).status_code)

    guesser = threading.Thread(target=guess)
    guesser.start()
    try:
        assert observed_hasher.started.wait(timeout=60)
        order = ["hash check started", write_beside(app, "victim")]
    finally:
        observed_hasher.go.set()
        guesser.join(timeout=60)
    assert order == ["hash check started", "other writer committed"]
    assert answers == [401]
    assert failed_attempts(app, "victim") == 1
