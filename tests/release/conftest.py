"""Fixtures for batch release over HTTP: a team, master data (a raw material, a finished
product with effective in-process and final plans, an approved supplier), and a client that
walks the usual steps to a batch submitted for release."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

import qms.capa.api  # noqa: F401  (registers the record types and routes before any app)
import qms.deviations.api  # noqa: F401
import qms.inspection.api  # noqa: F401
import qms.materials.api  # noqa: F401
import qms.release.api  # noqa: F401
from tests.materials.support import ApiClient

RAW, PRODUCT, SUPPLIER = "RM-API", "FG-TAB", "SUP-ACME"
OPERATION = "OP-20 compression"
DEVIATION = {"title": "Granulator over temperature", "kind": "unplanned", "severity": "minor",
             "occurred_on": "2026-01-15",
             "description": "The granulator ran at 65 C for 12 minutes (limit 60 C)."}
INVESTIGATION = {"investigation": "Sensor log and operator interviews.",
                 "root_cause": "Thermostat drift.",
                 "impact_assessment": "No impact: assay within limits."}


@pytest.fixture
def team(make_user):
    """Production makes and reviews batches; the inspector inspects; alex decides the
    inspections, anna releases; rita (QA reviewer) drafts master data and investigates."""
    return SimpleNamespace(production=make_user("paul.production", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"),
                           decider=make_user("alex.approver", "qa_approver"),
                           inspector=make_user("ivan.inspector", "inspector"),
                           auditor=make_user("otto.auditor", "auditor"))


class ReleaseClient(ApiClient):
    """The usual steps, each asserting success."""

    def lot(self, quantity: str = "100", **extra) -> str:
        """A received raw-material lot, released by QA."""
        number = self.ok(self.post(self.team.production, "/lots", {
            "material": RAW, "supplier": SUPPLIER, "quantity": quantity, "unit": "kg",
            **extra}), 201)["number"]
        self.ok(self.transition(self.team.approver, f"/lots/{number}", "release",
                                meaning="released"))
        return number

    def produce(self, inputs: list[tuple[str, str]], *, user=None, material: str = PRODUCT,
                unit: str = "pcs") -> str:
        body = {"material": material, "line": "L1", "quantity": "1000", "unit": unit,
                "inputs": [{"lot_number": lot, "quantity": q} for lot, q in inputs]}
        return self.ok(self.post(user or self.team.production, "/batches", body),
                       201)["number"]

    def inspection(self, batch: str, stage: str, *, operation: str | None = None,
                   opener=None, recorder=None, performer=None, passed: bool = True,
                   decide: str | None = "accept") -> str:
        """Open, record, complete and (unless ``decide`` is None) accept or reject an
        in-process or final inspection of the batch; returns its number."""
        body = {"stage": stage, "batch_number": batch}
        if operation is not None:
            body["operation"] = operation
        number = self.ok(self.post(opener or self.team.inspector, "/inspections", body),
                         201)["number"]
        self.ok(self.post(recorder or self.team.inspector, f"/inspections/{number}/results",
                          {"results": [{"characteristic": "VIS", "passed": passed}]}), 201)
        self.ok(self.transition(performer or self.team.inspector, f"/inspections/{number}",
                                "complete", meaning="performed"))
        if decide == "accept":
            self.ok(self.transition(self.team.decider, f"/inspections/{number}", "accept",
                                    meaning="approved"))
        elif decide == "reject":
            self.ok(self.transition(self.team.decider, f"/inspections/{number}", "reject",
                                    meaning="rejected", reason="cracked tablets"))
        return number

    def batch_action(self, user, batch: str, action: str, *, meaning: str | None = None,
                     reason: str | None = None):
        return self.transition(user, f"/batches/{batch}", action, meaning=meaning,
                               reason=reason)

    def finish(self, batch: str) -> dict:
        return self.ok(self.batch_action(self.team.production, batch, "finish"))

    def submit(self, batch: str, user=None) -> dict:
        user = user or self.team.production
        return self.ok(self.batch_action(user, batch, "submit_for_release", meaning="reviewed"))

    def release(self, batch: str, user=None):
        return self.batch_action(user or self.team.approver, batch, "release",
                                 meaning="released")

    def reverse(self, batch: str, lot: str, quantity: str, reason: str) -> dict:
        """A consumption booked in error reversed through the API (batch.manage)."""
        return self.ok(self.post(self.team.production, f"/batches/{batch}/inputs/reversals",
                                 {"lot_number": lot, "quantity": quantity, "reason": reason}))

    def return_to_production(self, batch: str) -> dict:
        return self.ok(self.batch_action(self.team.approver, batch, "return",
                                         reason="genealogy corrected; review again"))

    def check(self, batch: str) -> dict:
        return self.ok(self.get(self.team.auditor, f"/batches/{batch}/release-check"))

    def gate(self, batch: str, code: str) -> dict:
        return next(g for g in self.check(batch)["gates"] if g["code"] == code)

    def failing(self, batch: str) -> list[str]:
        return [g["code"] for g in self.check(batch)["gates"] if not g["passed"]]

    def status(self, number: str) -> str:
        return self.ok(self.get(self.team.auditor, f"/lots/{number}"))["status"]

    def batch(self, number: str) -> dict:
        return self.ok(self.get(self.team.auditor, f"/batches/{number}"))

    def ready_batch(self, *, inputs: list[tuple[str, str]] | None = None, submit: bool = True,
                    final: bool = True, in_process: bool = True) -> str:
        """A batch of the product that passes every gate: a released input consumed, its
        in-process and final inspections accepted, finished and (``submit``) submitted for
        release with production's reviewed signature."""
        batch = self.produce(inputs if inputs is not None else [(self.lot(), "10")])
        if in_process:
            self.inspection(batch, "in_process", operation=OPERATION)
        self.finish(batch)
        if final:
            self.inspection(batch, "final")
        if submit:
            self.submit(batch)
        return batch

    def deviation(self, *, lots=(), batches=(), **fields) -> str:
        return self.ok(self.post(self.team.production, "/deviations", {
            **DEVIATION, "lots": list(lots), "batches": list(batches), **fields}),
            201)["number"]

    def close_deviation(self, number: str, *, capa_required: bool = False) -> dict:
        path = f"/deviations/{number}"
        self.ok(self.transition(self.team.production, path, "submit_for_investigation"))
        self.ok(self.patch(self.team.reviewer, path,
                           {**INVESTIGATION, "capa_required": capa_required},
                           reason="investigation complete"))
        self.ok(self.transition(self.team.reviewer, path, "submit_for_closure"))
        return self.ok(self.transition(self.team.decider, path, "close", meaning="approved"))

    def effective_plan(self, stage: str, operation: str | None = None) -> str:
        body = {"material": PRODUCT, "stage": stage, "title": f"{stage} check",
                "sample_size": 1,
                "characteristics": [{"code": "VIS", "name": "Visual: no cracks",
                                     "type": "attribute"}]}
        if operation is not None:
            body["operation"] = operation
        number = self.ok(self.post(self.team.reviewer, "/inspection-plans", body),
                         201)["number"]
        self.ok(self.transition(self.team.reviewer, f"/inspection-plans/{number}", "submit"))
        self.ok(self.transition(self.team.approver, f"/inspection-plans/{number}", "approve",
                                meaning="approved"))
        return number


@pytest.fixture
def plant(client, auth_headers, team) -> ReleaseClient:
    """Master data and plans in place; every token issued up front, so that a snapshot taken
    later sees only the request under test."""
    api = ReleaseClient(client, auth_headers, team)
    api.issue_tokens()
    for body in ({"code": RAW, "name": "Active ingredient", "kind": "raw", "unit": "kg",
                  "shelf_life_days": 365},
                 {"code": PRODUCT, "name": "Tablets 10 mg", "kind": "finished", "unit": "pcs",
                  "shelf_life_days": 730}):
        api.ok(api.post(team.reviewer, "/materials", body), 201)
    api.ok(api.post(team.reviewer, "/suppliers", {"code": SUPPLIER, "name": "Acme"}), 201)
    api.ok(api.transition(team.approver, f"/suppliers/{SUPPLIER}", "approve",
                          meaning="approved"))
    api.effective_plan("in_process", OPERATION)
    api.effective_plan("final")
    return api




@pytest.fixture
def legacy_entry(uow):
    """legacy_entry(batch, lot, quantity, reason) writes a consumption entry by the materials
    module's own write path (a new batch version, audited) but without the consumption
    rules: a record migrated from paper, which the API does not take."""
    from decimal import Decimal

    from qms.identity.models import User
    from qms.materials.batches import Consumption, _consume
    from qms.materials.models import BATCHES, LOTS
    from qms.records.service import find_record

    def write(batch: str, lot: str, quantity: str, reason: str) -> None:
        with uow() as session:
            actor = session.scalar(select(User).where(User.username == "paul.production"))
            record = find_record(session, BATCHES, batch, for_update=True)
            consumed = find_record(session, LOTS, lot, for_update=True)
            _consume(session, record, actor, [Consumption(consumed, Decimal(quantity))],
                     reason=reason)
    return write






@pytest.fixture
def record_counts(app):
    """Rows of every table but the audit trail (a refused signature is audited)."""
    from qms.models import target_metadata

    def counts() -> dict[str, int]:
        with app.extensions["qms"].db.engine.connect() as connection:
            return {table.name: connection.scalar(select(func.count()).select_from(table))
                    for metadata in target_metadata for table in metadata.sorted_tables
                    if not table.name.startswith("audit_")}
    return counts
