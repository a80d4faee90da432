"""Fixtures for materials, suppliers, lots and batches: a team, an HTTP client that walks
the usual steps, and a unit of work for service-level tests."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import qms.materials.api  # noqa: F401  (registers the record types and routes before any app)
from tests.materials.support import ApiClient, audit_events_after


@pytest.fixture
def team(make_user):
    """Production receives and produces, a QA reviewer creates master data, a QA approver
    approves suppliers and releases lots, an inspector and an auditor only read."""
    return SimpleNamespace(production=make_user("paul.production", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           inspector=make_user("ivan.inspector", "inspector"),
                           auditor=make_user("otto.auditor", "auditor"))


class MaterialsClient(ApiClient):
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

    def release_batch(self, number: str) -> dict:
        """Take a finished batch through its release gates: an accepted final inspection
        (under an effective final plan of the material, made once), production's reviewed
        signature, QA's release. Returns the released lot."""
        team, batch = self.team, self.ok(self.get(self.team.auditor, f"/batches/{number}"))
        self._final_plan(batch["material"])
        inspection = self.ok(self.post(team.inspector, "/inspections",
                                       {"stage": "final", "batch_number": number}), 201)
        path = f"/inspections/{inspection['number']}"
        self.ok(self.post(team.inspector, f"{path}/results",
                          {"results": [{"characteristic": "VIS", "passed": True}]}), 201)
        self.ok(self.transition(team.inspector, path, "complete", meaning="performed"))
        self.ok(self.transition(team.approver, path, "accept", meaning="approved"))
        self.ok(self.transition(team.production, f"/batches/{number}", "submit_for_release",
                                meaning="reviewed"))
        self.ok(self.transition(team.approver, f"/batches/{number}", "release",
                                meaning="released"))
        return self.ok(self.get(team.auditor, f"/lots/{number}"))

    def _final_plan(self, material: str) -> None:
        plans = self.ok(self.get(self.team.auditor, "/inspection-plans", material=material,
                                 stage="final", state="effective"))
        if plans:
            return
        plan = self.ok(self.post(self.team.reviewer, "/inspection-plans", {
            "material": material, "stage": "final", "title": "Release testing",
            "sample_size": 1, "characteristics": [
                {"code": "VIS", "name": "Visual", "type": "attribute"}]}), 201)["number"]
        self.ok(self.transition(self.team.reviewer, f"/inspection-plans/{plan}", "submit"))
        self.ok(self.transition(self.team.approver, f"/inspection-plans/{plan}", "approve",
                                meaning="approved"))

    def trace(self, number: str, direction: str) -> dict:
        return self.ok(self.get(self.team.auditor, f"/lots/{number}/trace",
                                direction=direction))


@pytest.fixture
def materials(client, auth_headers, team) -> MaterialsClient:
    """Tokens are issued up front, so that a snapshot taken later sees only the request."""
    api = MaterialsClient(client, auth_headers, team)
    api.issue_tokens()
    return api


@pytest.fixture
def basics(materials):
    """An approved supplier, a raw material (kg, one year) and a finished one."""
    materials.material("RM-API")
    materials.material("FG-TAB", kind="finished", unit="pcs", shelf_life_days=730)
    materials.supplier("SUP-ACME")
    return materials




@pytest.fixture
def audit_events(app):
    """audit_events(after_seq) -> [(action, actor, entity_id, reason)]."""
    return lambda after=0: audit_events_after(app, after)

