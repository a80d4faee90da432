"""Fixtures for materials, suppliers, lots and batches: a team, an HTTP client that walks
the usual steps, and a unit of work for service-level tests."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

import qms.materials.api  # noqa: F401  (registers the record types and routes before any app)


@pytest.fixture
def team(make_user):
    """Production receives and produces, a QA reviewer creates master data, a QA approver
    approves suppliers and releases lots, an inspector and an auditor only read."""
    return SimpleNamespace(production=make_user("paul.production", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           inspector=make_user("ivan.inspector", "inspector"),
                           auditor=make_user("otto.auditor", "auditor"))


@dataclass
class MaterialsClient:
    client: object
    auth_headers: object
    team: SimpleNamespace
    _headers: dict = field(default_factory=dict)

    def headers(self, user) -> dict:
        if user.username not in self._headers:
            self._headers[user.username] = self.auth_headers(user)
        return self._headers[user.username]

    def post(self, user, path: str, body):
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers(user))

    def get(self, user, path: str, **query):
        return self.client.get(f"/api/v1{path}", query_string=query, headers=self.headers(user))

    def patch(self, user, path: str, changes: dict, reason: str | None = "correction"):
        return self.client.patch(f"/api/v1{path}", json={"changes": changes, "reason": reason},
                                 headers=self.headers(user))

    def ok(self, response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def transition(self, user, path: str, action: str, *, meaning: str | None = None,
                   reason: str | None = None):
        body = {"action": action}
        if reason is not None:
            body["reason"] = reason
        if meaning is not None:
            body["signature"] = {"username": user.username, "password": user.password,
                                 "meaning": meaning}
        return self.post(user, f"{path}/transitions", body)

    # the usual steps, each asserting success
    def material(self, code: str = "RM-API", *, kind: str = "raw", unit: str = "kg",
                 shelf_life_days: int | None = 365, **extra) -> dict:
        body = {"code": code, "name": f"Material {code}", "kind": kind, "unit": unit,
                "shelf_life_days": shelf_life_days, **extra}
        return self.ok(self.post(self.team.reviewer, "/materials", body), 201)

    def supplier(self, code: str = "SUP-ACME", *, approve: bool = True) -> dict:
        created = self.ok(self.post(self.team.reviewer, "/suppliers",
                                    {"code": code, "name": f"Supplier {code}"}), 201)
        if not approve:
            return created
        return self.ok(self.transition(self.team.approver, f"/suppliers/{code}", "approve",
                                       meaning="approved"))

    def receive(self, material: str = "RM-API", supplier: str = "SUP-ACME",
                quantity: str = "100", unit: str = "kg", **extra):
        body = {"material": material, "supplier": supplier, "quantity": quantity,
                "unit": unit, **extra}
        return self.post(self.team.production, "/lots", body)

    def received(self, *args, release: bool = True, **kwargs) -> str:
        number = self.ok(self.receive(*args, **kwargs), 201)["number"]
        if release:
            self.release(number)
        return number

    def release(self, number: str) -> dict:
        return self.ok(self.transition(self.team.approver, f"/lots/{number}", "release",
                                       meaning="released"))

    def produce(self, material: str, inputs: list[dict], *, line: str = "L1",
                quantity: str = "50", unit: str = "kg", **extra):
        body = {"material": material, "line": line, "quantity": quantity, "unit": unit,
                "inputs": inputs, **extra}
        return self.post(self.team.production, "/batches", body)

    def trace(self, number: str, direction: str) -> dict:
        return self.ok(self.get(self.team.auditor, f"/lots/{number}/trace",
                                direction=direction))


@pytest.fixture
def materials(client, auth_headers, team) -> MaterialsClient:
    """Tokens are issued up front, so that a snapshot taken later sees only the request."""
    api = MaterialsClient(client, auth_headers, team)
    for user in vars(team).values():
        api.headers(user)
    return api


@pytest.fixture
def basics(materials):
    """An approved supplier, a raw material (kg, one year) and a finished one."""
    materials.material("RM-API")
    materials.material("FG-TAB", kind="finished", unit="pcs", shelf_life_days=730)
    materials.supplier("SUP-ACME")
    return materials


@pytest.fixture
def uow(app):
    """uow() -> a context manager giving a write session inside the app, committed at the
    end (or rolled back on an exception), like one request."""
    state = app.extensions["qms"]

    @contextmanager
    def unit():
        with app.app_context(), state.db.unit_of_work() as session:
            yield session
    return unit


@pytest.fixture
def audit_events(app):
    """audit_events(after_seq) -> [(action, actor, entity_id, reason)]."""
    from sqlalchemy import text

    def events(after: int = 0) -> list[tuple]:
        with app.extensions["qms"].db.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(
                "SELECT action, actor, entity_id, reason FROM audit_events WHERE seq > :seq "
                "ORDER BY seq"), {"seq": after})]
    return events

