"""Signing attempts share the rate limits on failed credential checks (issue 9, point 11):
past one a signature is refused with 429 before the password is hashed or anything written."""
from __future__ import annotations

import pytest

from qms.errors import SignatureRefused, TooManyAttempts
from qms.errors import must_commit_before_raise
from tests.esign.test_signatures import _refusal, _refusal_events
from tests.identity.test_concurrent_rate_limit import burst
from tests.identity.test_concurrent_rate_limit import held_hashing  # noqa: F401  (a fixture)
from tests.identity.test_login_and_lockout import events, failed_attempts


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


@pytest.fixture
def reviewer_headers(review_target, auth_headers) -> dict[str, str]:
    return auth_headers(review_target.reviewer)


def test_parallel_wrong_signatures_hash_no_more_than_the_limit_allows(app, review_target,
                                                                     reviewer_headers,
                                                                     held_hashing):
    """The signature look-ahead hashes only inside the rate limit's admission, which it holds
    until the request ends: of twelve signatures in flight at once, two (the allowance per
    address and username) hash; the others are refused with 429 without hashing."""
    url = f"/api/v1/documents/{review_target.number}/transitions"

    def sign(n: int) -> int:
        return app.test_client().post(url, headers=reviewer_headers, json={
            "action": "review", "version": 2, "signature": {
                "username": "rick.reviewer", "password": f"wrong password {n}",
                "meaning": "reviewed"}}).status_code

    # the token was issued before the hash was held
    hashing_at_once, statuses = burst(held_hashing, sign, 12)
    assert hashing_at_once == 2
    assert statuses == [403] * 2 + [429] * 10
    assert failed_attempts(app, "rick.reviewer") == 2
