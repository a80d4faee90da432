"""Test support shared by tests/materials and tests/inspection: an HTTP client that calls the
API as one user or another (each user's token issued once), and the audit events written
after a point."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import time

from sqlalchemy import text


@dataclass
class ApiClient:
    client: object
    auth_headers: object
    team: SimpleNamespace
    _headers: dict = field(default_factory=dict)

    def headers(self, user) -> dict:
        if user.username not in self._headers:
            self._headers[user.username] = self.auth_headers(user)
        return self._headers[user.username]

    def issue_tokens(self) -> None:
        """Issue every team member's token now, so that a snapshot taken later sees only
        the request under test."""
        for user in vars(self.team).values():
            self.headers(user)

    def post(self, user, path: str, body=None):
        return self.client.post(f"/api/v1{path}", json=body if body is not None else {},
                                headers=self.headers(user))

    def get(self, user, path: str, **query):
        return self.client.get(f"/api/v1{path}", query_string=query, headers=self.headers(user))

    def patch(self, user, path: str, changes: dict, reason: str | None = "correction"):
        return self.client.patch(f"/api/v1{path}", json={"changes": changes, "reason": reason},
                                 headers=self.headers(user))

    @staticmethod
    def ok(response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def transition(self, user, path: str, action: str, *, meaning: str | None = None,
                   reason: str | None = None, version: int | None = None):
        """A signed transition (``meaning``) names the version the signer saw: ``version``,
        else the one the signer reads now."""
        body = {"action": action}
        if reason is not None:
            body["reason"] = reason
        if meaning is not None:
            body["signature"] = {"username": user.username, "password": user.password,
                                 "meaning": meaning}
            body["version"] = version or self.get(user, path).get_json()["version"]
        return self.post(user, f"{path}/transitions", body)


def audit_events_after(app, seq: int = 0) -> list[tuple]:
    """(action, actor, entity_id, reason) of every audit event after ``seq``, in order."""
    with app.extensions["qms"].db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT action, actor, entity_id, reason FROM audit_events WHERE seq > :seq "
            "ORDER BY seq"), {"seq": seq})]


def wait_for_a_lock_wait(engine, waiter: str, seconds: float = 10) -> None:
    """Return once some session of the test database waits for a row lock (PostgreSQL);
    fail naming ``waiter`` when none does within ``seconds``."""
    deadline = time.monotonic() + seconds
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError(f"{waiter} never waited for the lot")
