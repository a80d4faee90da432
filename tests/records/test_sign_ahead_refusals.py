"""A signed transition that will be refused whatever the password costs no argon2 and no
scrypt (issue 9, point 10): the signature look-ahead first runs the checks that need no
password (the caller's permissions, the record, its state and version, the signer's account,
segregation of duties), the ones the transition itself runs, and hashes only when nothing
but the password is left to check. Otherwise any token holder could spend a third of a
second of server CPU per request by posting signatures they may not give.

The hasher and the key derivation are the real ones, counted: the test is about when they
run, not about what they compute.
"""
from __future__ import annotations

import pytest

from qms.esign import keys


class Counted:
    """The real callable (or the real hasher's ``verify``), counting its calls."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


class CountedHasher:
    def __init__(self, real):
        self.real, self.verify = real, Counted(real.verify)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def slow_work(app, monkeypatch):
    """slow_work() -> (argon2 verifications, scrypt derivations) since the fixture began."""
    security = app.extensions["qms"].security
    hasher = CountedHasher(security.hasher)
    derive = Counted(keys.derive_wrapping_key)

    def start():
        monkeypatch.setattr(security, "hasher", hasher)
        monkeypatch.setattr(keys, "derive_wrapping_key", derive)
        return lambda: (hasher.verify.calls, derive.calls)
    return start


@pytest.fixture
def in_review(documents, team) -> str:
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    for user in (team.author, team.reviewer, team.approver, team.auditor):
        documents.headers(user)  # every token is issued before the counting starts
    return number


REFUSALS = {
    # (who, action, meaning, extra body, the status that refuses it)
    "no permission for the action": ("author", "review", "reviewed", {}, 403),
    "action not open from the state": ("approver", "approve", "approved", {}, 409),
    "a version the signer did not see": ("reviewer", "review", "reviewed", {"version": 1}, 409),
    "no version named": ("reviewer", "review", "reviewed", {"version": None}, 422),
    "another meaning": ("reviewer", "review", "approved", {}, 422),
    "someone else's username": ("reviewer", "review", "reviewed",
                                {"username": "anna.approver"}, 403),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_signature_hashes_nothing(documents, team, in_review, slow_work, case):
    who, action, meaning, extra, status = REFUSALS[case]
    user = getattr(team, who)
    counted = slow_work()
    response = documents.transition(user, in_review, action, meaning=meaning,
                                    **{"version": 2, **extra})
    assert response.status_code == status, response.get_json()
    assert counted() == (0, 0)


def test_an_author_signing_their_own_record_hashes_nothing(app, documents, team, slow_work):
    number = documents.create_number(team.reviewer)  # rita.reviewer writes it, then reviews it
    documents.to_state(team, number, "in_review")
    counted = slow_work()
    response = documents.transition(team.reviewer, number, "review", meaning="reviewed")
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/segregation-of-duties")
    assert counted() == (0, 0)


def test_an_unknown_record_hashes_nothing(documents, team, in_review, slow_work):
    counted = slow_work()
    response = documents.transition(team.reviewer, "DOC-2099-99999", "review",
                                    meaning="reviewed", version=2)
    assert response.status_code == 404
    assert counted() == (0, 0)


def test_a_signature_on_a_route_that_signs_nothing_is_not_hashed(client, documents, team,
                                                                 in_review, slow_work):
    counted = slow_work()
    response = client.post("/api/v1/documents", headers=documents.headers(team.reviewer),
                           json={"title": "Cleaning of line 4", "doc_type": "sop",
                                 "summary": "How line 4 is cleaned.",
                                 "signature": {"username": team.reviewer.username,
                                               "password": team.reviewer.password,
                                               "meaning": "reviewed"}})
    assert response.status_code == 422
    assert counted() == (0, 0)


def test_a_signature_that_may_be_given_is_hashed_once_ahead(documents, team, in_review,
                                                           slow_work):
    counted = slow_work()
    response = documents.transition(team.reviewer, in_review, "review", meaning="reviewed",
                                    version=2)
    assert response.status_code == 200, response.get_json()
    assert counted() == (1, 1)  # argon2 and scrypt once each, ahead of the writer
