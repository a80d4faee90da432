"""Fixtures for inspection over HTTP: a team, master data, and a client that walks the usual
steps (plans drafted and approved, lots received, results recorded, decisions signed)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text

import qms.inspection.api  # noqa: F401  (registers the record types and routes before any app)
import qms.materials.api  # noqa: F401
from tests.materials.support import ApiClient

MATERIAL, PRODUCT, SUPPLIER = "RM-PART", "FG-TAB", "SUP-ACME"
RECORD_TABLES = ("inspection_plans", "inspections", "inspection_results", "lots",
                 "record_versions", "signatures", "deviations")


def numeric(code: str = "DIA", lsl: str | None = "9.90", usl: str | None = "10.10",
            target: str | None = "10.00", decimals: int = 2, unit: str = "mm") -> dict:
    return {"code": code, "name": f"Characteristic {code}", "type": "numeric", "unit": unit,
            "lsl": lsl, "usl": usl, "target": target, "decimals": decimals}


def attribute(code: str = "VIS") -> dict:
    return {"code": code, "name": "Visual: no cracks", "type": "attribute"}


@pytest.fixture
def team(make_user):
    """QA reviewer drafts plans and master data, QA approvers approve and decide, the
    inspector records and performs, production receives and produces."""
    return SimpleNamespace(reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           approver2=make_user("alex.approver", "qa_approver"),
                           inspector=make_user("ivan.inspector", "inspector"),
                           production=make_user("paul.production", "production"),
                           auditor=make_user("otto.auditor", "auditor"))


class InspectionClient(ApiClient):
    # plans
    def draft_plan(self, user=None, **fields):
        body = {"material": MATERIAL, "stage": "incoming", "title": "Incoming check of parts",
                "inspection_level": "II", "aql": "1.0",
                "characteristics": [numeric(), attribute()], **fields}
        return self.post(user or self.team.reviewer, "/inspection-plans", body)

    def effective_plan(self, **fields) -> dict:
        number = self.ok(self.draft_plan(**fields), 201)["number"]
        self.ok(self.transition(self.team.reviewer, f"/inspection-plans/{number}", "submit"))
        return self.ok(self.transition(self.team.approver, f"/inspection-plans/{number}",
                                       "approve", meaning="approved"))

    # lots and inspections
    def receive(self, quantity: str = "60", material: str = MATERIAL) -> dict:
        return self.ok(self.post(self.team.production, "/lots", {
            "material": material, "supplier": SUPPLIER, "quantity": quantity, "unit": "pcs"}),
            201)

    def inspection_of_lot(self, lot: str) -> dict:
        found = self.ok(self.get(self.team.auditor, "/inspections", lot=lot))
        assert len(found) == 1, found
        return found[0]

    def results(self, user, number: str, entries: list[dict]):
        return self.post(user, f"/inspections/{number}/results", {"results": entries})

    def record_all(self, number: str, samples: int, *, bad: dict[int, str] | None = None):
        """A conforming DIA value and a VIS pass on every sample; ``bad`` replaces DIA
        values by sample."""
        bad = bad or {}
        entries = [{"characteristic": "DIA", "value": bad.get(n, "10.01"), "sample": n}
                   for n in range(1, samples + 1)]
        entries += [{"characteristic": "VIS", "passed": True} for _ in range(samples)]
        return self.ok(self.results(self.team.inspector, number, entries), 201)

    def complete(self, number: str, user=None) -> dict:
        return self.ok(self.transition(user or self.team.inspector, f"/inspections/{number}",
                                       "complete", meaning="performed"))


@pytest.fixture
def inspections(client, auth_headers, team) -> InspectionClient:
    """Tokens are issued up front, so that a snapshot taken later sees only the request."""
    api = InspectionClient(client, auth_headers, team)
    api.issue_tokens()
    return api


@pytest.fixture
def master_data(inspections, team):
    """A raw material counted in pieces, a finished product, an approved supplier."""
    for body in ({"code": MATERIAL, "name": "Machined part", "kind": "raw", "unit": "pcs",
                  "shelf_life_days": 365},
                 {"code": PRODUCT, "name": "Tablet", "kind": "finished", "unit": "pcs",
                  "shelf_life_days": 730}):
        inspections.ok(inspections.post(team.reviewer, "/materials", body), 201)
    inspections.ok(inspections.post(team.reviewer, "/suppliers",
                                    {"code": SUPPLIER, "name": "Acme Parts"}), 201)
    inspections.ok(inspections.transition(team.approver, f"/suppliers/{SUPPLIER}", "approve",
                                          meaning="approved"))
    return inspections


@pytest.fixture
def record_counts(app):
    def counts() -> dict[str, int]:
        with app.extensions["qms"].db.engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(text(name)))
                    for name in RECORD_TABLES}
    return counts



