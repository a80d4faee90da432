"""Signing does its slow work before the write transaction (issue 9, point 10): while the
signer's password is hashed (argon2) and while their key is unwrapped (scrypt), another
writer commits, on SQLite (the database-wide write lock) as on PostgreSQL (the record's and
the user's row locks). The signature is then applied, with the real argon2, scrypt and
Ed25519, and verifies.

Each slow step is the real one, observed: it announces that it started and waits until the
test has tried another write transaction, so the test asserts an order, never a duration.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from qms.documents.models import Document
from qms.esign import keys
from qms.esign.models import Signature
from qms.esign.service import verify_stored_signature
from tests.identity.test_lock_free_password_check import ObservedHasher, write_beside
from tests.identity.test_login_and_lockout import failed_attempts


class ObservedCall:
    """The real function; its first call says it started, then waits for the test's go."""

    def __init__(self, real):
        self.real = real
        self.started, self.go = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.started.set()
        self.go.wait(timeout=60)
        return self.real(*args, **kwargs)


def sign_review(app, number: str, reviewer, headers, answers: list) -> threading.Thread:
    body = {"action": "review", "version": 2,
            "signature": {"username": reviewer.username, "password": reviewer.password,
                          "meaning": "reviewed"}}

    def post():
        answers.append(app.test_client().post(f"/api/v1/documents/{number}/transitions",
                                              json=body, headers=headers).status_code)
    thread = threading.Thread(target=post)
    thread.start()
    return thread


@pytest.mark.parametrize("step", ["argon2", "scrypt"])
def test_another_writer_commits_while_a_signature_does_its_slow_work(
        app, review_target, auth_headers, monkeypatch, step):
    headers = auth_headers(review_target.reviewer)
    security = app.extensions["qms"].security
    security.dummy_hash()
    if step == "argon2":
        observed = ObservedHasher(security.hasher)
        monkeypatch.setattr(security, "hasher", observed)
    else:
        observed = ObservedCall(keys.derive_wrapping_key)
        monkeypatch.setattr(keys, "derive_wrapping_key", observed)
    answers = []
    signer = sign_review(app, review_target.number, review_target.reviewer, headers, answers)
    try:
        assert observed.started.wait(timeout=60)
        order = [f"{step} started",
                 write_beside(app, review_target.reviewer.username,
                              select(Document).where(Document.number == review_target.number))]
    finally:
        observed.go.set()
        signer.join(timeout=60)
    assert order == [f"{step} started", "other writer committed"]
    assert answers == [200]
    with app.extensions["qms"].db.reading() as session:
        [signature] = session.scalars(select(Signature)).all()
        assert signature.signer == review_target.reviewer.username
        assert verify_stored_signature(session, signature)


def test_a_wrong_signing_password_is_still_counted(app, client, review_target, auth_headers):
    headers = auth_headers(review_target.reviewer)
    body = {"action": "review", "version": 2,
            "signature": {"username": review_target.reviewer.username,
                          "password": "not the password at all", "meaning": "reviewed"}}
    response = client.post(f"/api/v1/documents/{review_target.number}/transitions", json=body,
                           headers=headers)
    assert response.status_code == 403
    assert failed_attempts(app, review_target.reviewer.username) == 1


def test_looking_ahead_for_a_signature_leaves_bad_bodies_to_the_endpoint(
        client, review_target, auth_headers):
    headers = auth_headers(review_target.reviewer)
    nested = client.post(f"/api/v1/documents/{review_target.number}/transitions",
                         headers=headers, content_type="application/json",
                         data="[" * 100_000 + "]" * 100_000)
    assert nested.status_code == 422 and nested.get_json()["errors"].keys() == {"_body"}
    odd = client.post(f"/api/v1/documents/{review_target.number}/transitions",
                      headers=headers, json={"action": "review", "version": 2,
                            "signature": ["not", "a", "map"]})
    assert odd.status_code == 422
    surrogate = client.post(
        f"/api/v1/documents/{review_target.number}/transitions", headers=headers,
        content_type="application/json",
        data='{"action": "review", "version": 2, "signature": {"username": "rick.reviewer", '
             '"password": "\\ud800 not hashable", "meaning": "reviewed"}}')
    assert surrogate.status_code == 422
    assert surrogate.get_json()["errors"].keys() == {"signature.password"}
