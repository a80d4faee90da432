"""Test support shared by tests/deviations and tests/capa: a small HTTP client for controlled
records, a team of users, and stock (a released lot and a batch) made through the materials
API, the way a site would; the fixtures ``api``, ``team`` and ``stock`` that both conftests
import."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

import qms.capa.api  # noqa: F401  (registers the record types and routes before any app)
import qms.deviations.api  # noqa: F401
import qms.materials.api  # noqa: F401


@dataclass
class RecordsClient:
    """HTTP calls as one user or another, with each user's token issued once."""

    client: Any
    auth_headers: Any
    _headers: dict = field(default_factory=dict)

    def headers(self, user) -> dict:
        if user.username not in self._headers:
            self._headers[user.username] = self.auth_headers(user)
        return self._headers[user.username]

    def post(self, user, path: str, body: dict):
        return self.client.post(f"/api/v1/{path}", json=body, headers=self.headers(user))

    def get(self, user, path: str):
        return self.client.get(f"/api/v1/{path}", headers=self.headers(user))

    def patch(self, user, path: str, changes: dict, reason: str | None = None):
        body: dict = {"changes": changes}
        if reason is not None:
            body["reason"] = reason
        return self.client.patch(f"/api/v1/{path}", json=body, headers=self.headers(user))

    def transition(self, user, path: str, action: str, *, reason: str | None = None,
                   meaning: str | None = None, version: int | None = None):
        """A signed transition (``meaning``) names the version the signer saw: ``version``,
        else the one the signer reads now."""
        body: dict = {"action": action}
        if reason is not None:
            body["reason"] = reason
        if meaning is not None:
            body["signature"] = {"username": user.username, "password": user.password,
                                 "meaning": meaning}
            body["version"] = version or self.get(user, path).get_json()["version"]
        return self.post(user, f"{path}/transitions", body)

    def ok(self, response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_json()
        return response.get_json()


@pytest.fixture
def api(client, auth_headers) -> RecordsClient:
    return RecordsClient(client, auth_headers)


@pytest.fixture
def team(make_user) -> SimpleNamespace:
    return SimpleNamespace(
        production=make_user("pia.production", "production"),
        inspector=make_user("ivan.inspector", "inspector"),
        reviewer=make_user("rita.reviewer", "qa_reviewer"),
        approver=make_user("anna.approver", "qa_approver"),
        second_approver=make_user("quinn.approver", "qa_approver"),
        auditor=make_user("otto.auditor", "auditor"))


@pytest.fixture
def stock(api: RecordsClient, team) -> SimpleNamespace:
    """A released raw-material lot, a batch that consumed part of it (its output lot in
    quarantine), and a second released lot."""
    qa, approver = team.reviewer, team.approver
    api.ok(api.post(qa, "materials", {"code": "RM-API", "name": "Active ingredient",
                                      "kind": "raw", "unit": "kg", "shelf_life_days": 365}),
           201)
    api.ok(api.post(qa, "materials", {"code": "FG-TAB", "name": "Tablets", "kind": "finished",
                                      "unit": "kg", "shelf_life_days": 730}), 201)
    api.ok(api.post(qa, "suppliers", {"code": "ACME", "name": "Acme Chemicals"}), 201)
    api.ok(api.transition(approver, "suppliers/ACME", "approve", meaning="approved"))
    lots = [_released_lot(api, team) for _ in range(2)]
    batch = api.ok(api.post(team.production, "batches", {
        "material": "FG-TAB", "line": "L1", "quantity": "10", "unit": "kg",
        "inputs": [{"lot_number": lots[0], "quantity": "5"}]}), 201)
    return SimpleNamespace(lot=lots[0], other_lot=lots[1], batch=batch["number"],
                           batch_status=batch["status"])


def _released_lot(api: RecordsClient, team) -> str:
    lot = api.ok(api.post(team.reviewer, "lots", {"material": "RM-API", "supplier": "ACME",
                                                   "quantity": "100", "unit": "kg"}), 201)
    api.ok(api.transition(team.approver, f"lots/{lot['number']}", "release",
                          meaning="released"))
    return lot["number"]


def audit_events(app, after: int) -> list[tuple[str, str, str | None]]:
    """(action, actor, entity id) of the events after ``after``."""
    with app.extensions["qms"].db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT action, actor, entity_id FROM audit_events WHERE seq > :seq ORDER BY seq"),
            {"seq": after}).all()
    return [tuple(row) for row in rows]


def audit_head(app) -> int:
    with app.extensions["qms"].db.engine.connect() as connection:
        return connection.execute(text("SELECT seq FROM audit_head")).scalar_one()


def chain_verified(api: RecordsClient, auditor) -> None:
    """The whole audit chain verifies, as an auditor sees it over the API: no problem (no
    checkpoint is written in these tests, so the verdict is UNANCHORED)."""
    result = api.ok(api.get(auditor, "audit/verify"))
    assert result["verdict"] == "UNANCHORED" and result["first_bad_seq"] is None, result
