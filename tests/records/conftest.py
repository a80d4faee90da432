"""Fixtures for controlled records over HTTP: a team of users and a small documents client."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text

import qms.documents.api  # noqa: F401  (registers the record type and its routes before any app)

TABLES_OF_RECORDS = ("documents", "record_versions", "record_numbers", "signatures")


@pytest.fixture
def team(make_user):
    """An author (production), a reviewer, an approver and an auditor."""
    return SimpleNamespace(author=make_user("paul.author", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           auditor=make_user("otto.auditor", "auditor"))


@dataclass
class DocumentsClient:
    client: object
    auth_headers: object
    _headers: dict = field(default_factory=dict)

    def headers(self, user) -> dict:
        if user.username not in self._headers:
            self._headers[user.username] = self.auth_headers(user)
        return self._headers[user.username]

    def create(self, user, **fields):
        body = {"title": "Cleaning of line 3", "doc_type": "sop",
                "summary": "How line 3 is cleaned.", **fields}
        return self.client.post("/api/v1/documents", json=body, headers=self.headers(user))

    def create_number(self, user, **fields) -> str:
        response = self.create(user, **fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["number"]

    def get(self, user, number: str):
        return self.client.get(f"/api/v1/documents/{number}", headers=self.headers(user))

    def patch(self, user, number: str, changes: dict, reason: str | None = None, **extra):
        body = {"changes": changes, **extra}
        if reason is not None:
            body["reason"] = reason
        return self.client.patch(f"/api/v1/documents/{number}", json=body,
                                 headers=self.headers(user))

    def transition(self, user, number: str, action: str, *, reason: str | None = None,
                   meaning: str | None = None, password: str | None = None,
                   username: str | None = None, **extra):
        """A signed transition (``meaning``) names the version the signer saw: ``version``
        in ``extra``, else the one the caller reads now."""
        body = {"action": action, **extra}
        if reason is not None:
            body["reason"] = reason
        if meaning is not None:
            body["signature"] = {"username": username or user.username,
                                 "password": password or user.password, "meaning": meaning}
            body.setdefault("version", self.get(user, number).get_json().get("version"))
        return self.client.post(f"/api/v1/documents/{number}/transitions", json=body,
                                headers=self.headers(user))

    def history(self, user, number: str):
        return self.client.get(f"/api/v1/documents/{number}/history", headers=self.headers(user))

    def to_state(self, team, number: str, target: str) -> dict:
        """Walk a draft along the happy path until ``target``."""
        steps = [("in_review", team.author, "submit", None, None),
                 ("reviewed", team.reviewer, "review", "reviewed", None),
                 ("effective", team.approver, "approve", "approved", None),
                 ("obsolete", team.approver, "retire", "approved", "superseded")]
        body = None
        for state, user, action, meaning, reason in steps:
            response = self.transition(user, number, action, meaning=meaning, reason=reason)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            if state == target:
                return body
        raise AssertionError(f"{target} is not on the happy path")


@pytest.fixture
def documents(client, auth_headers) -> DocumentsClient:
    return DocumentsClient(client, auth_headers)


@pytest.fixture
def audit_since(app):
    """audit_since(seq) -> [(action, actor, entity_id)] of the events after seq."""
    def events(after: int) -> list[tuple[str, str, str | None]]:
        with app.extensions["qms"].db.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT action, actor, entity_id FROM audit_events WHERE seq > :seq "
                "ORDER BY seq"), {"seq": after}).all()
        return [tuple(row) for row in rows]
    return events





@pytest.fixture
def user_row(app):
    """user_row(username) -> (failed_attempts, locked) as committed."""
    from qms.identity.models import User

    def read(username: str) -> tuple[int, bool]:
        with app.extensions["qms"].db.reading() as session:
            user = session.scalar(select(User).where(User.username == username))
            return user.failed_attempts, user.locked

    return read


@pytest.fixture
def record_counts(app):
    def counts() -> dict[str, int]:
        with app.extensions["qms"].db.engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(text(name)))
                    for name in TABLES_OF_RECORDS}
    return counts
