"""Signing attempts share the rate limits on failed credential checks (issue 9, point 11):
past one a signature is refused with 429 before the password is hashed or anything written."""
from __future__ import annotations

import pytest

from qms.errors import SignatureRefused, TooManyAttempts
from qms.esign.service import must_commit_before_raise
from tests.esign.test_signatures import _refusal, _refusal_events
from tests.identity.test_login_and_lockout import events


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME": "2 per hour"}


def test_wrong_signing_passwords_are_throttled_per_address_and_username(app, review_target,
                                                                        db_snapshot):
    first, second = (_refusal(app, review_target.number, "rick.reviewer", "wrong password here")
                     for _ in range(2))
    assert isinstance(first, SignatureRefused) and isinstance(second, SignatureRefused)
    before = db_snapshot()
    third = _refusal(app, review_target.number, "rick.reviewer",
                     review_target.reviewer.password)
    assert isinstance(third, TooManyAttempts) and third.status == 429
    assert third.headers["Retry-After"].isdigit()
    assert not must_commit_before_raise(third)  # a throttled attempt writes nothing
    assert db_snapshot() == before
    assert len(_refusal_events(app, review_target.number)) == 2
    # a command on the server itself is the client "local"
    assert [(e.data["purpose"], e.data["client"])
            for e in events(app, "identity.login.failed")] == [("signature", "local")] * 2


def test_a_throttled_signature_over_the_api_is_429_with_retry_after(app, client, review_target,
                                                                   auth_headers, db_snapshot):
    headers = auth_headers(review_target.reviewer)
    url = f"/api/v1/documents/{review_target.number}/transitions"

    def sign(password: str):
        return client.post(url, headers=headers, json={"action": "review", "version": 2, "signature": {
            "username": "rick.reviewer", "password": password, "meaning": "reviewed"}})

    assert [sign("wrong password here").status_code for _ in range(2)] == [403, 403]
    before = db_snapshot()
    throttled = sign(review_target.reviewer.password)
    assert throttled.status_code == 429 and throttled.mimetype == "application/problem+json"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert db_snapshot() == before
