"""A produced lot is released only by its batch's release decision; whoever
recorded or corrected results does not take the usage decision; a usage decision takes the
lot lock before the audit head lock (no deadlock with paths that lock the lot first)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from tests.inspection.conftest import PRODUCT, SUPPLIER, attribute
from tests.materials.support import wait_for_a_lock_wait


def _fixed_plan(api, stage: str, operation: str | None = None) -> dict:
    return api.effective_plan(material=PRODUCT, stage=stage, operation=operation,
                              sample_size=1, aql=None, inspection_level=None,
                              characteristics=[attribute("VIS")])


def _batch(api, team) -> str:
    body = {"material": PRODUCT, "line": "L1", "quantity": "1000", "unit": "pcs"}
    return api.ok(api.post(team.production, "/batches", body), 201)["number"]


def _open(api, team, batch: str, stage: str, operation: str | None = None) -> str:
    body = {"stage": stage, "batch_number": batch}
    if operation is not None:
        body["operation"] = operation
    return api.ok(api.post(team.production, "/inspections", body), 201)["number"]


def _perform(api, team, number: str, passed: bool = True) -> None:
    api.ok(api.results(team.inspector, number, [{"characteristic": "VIS", "passed": passed}]),
           201)
    api.complete(number)


def test_a_produced_lot_is_released_only_by_its_batch(master_data, team, db_snapshot,
                                                      chain_intact):
    """The batch's release decision releases its lot, once the release gates (the batch's
    inspections among them: tests/release) pass; releasing the lot by hand would skip
    them. Rejecting the lot by hand stays open: that is the safe direction."""
    api = master_data
    _fixed_plan(api, "final")
    batch = _batch(api, team)
    final = _open(api, team, batch, "final")
    _perform(api, team, final)
    api.ok(api.transition(team.approver, f"/inspections/{final}", "accept",
                          meaning="approved"))
    api.ok(api.transition(team.production, f"/batches/{batch}", "finish"))
    before = db_snapshot()
    refused = api.transition(team.approver, f"/lots/{batch}", "release", meaning="released")
    assert refused.status_code == 409
    assert refused.get_json()["batch"] == batch
    assert "release-check" in refused.get_json()["detail"]
    assert db_snapshot() == before
    rejected = api.ok(api.transition(team.approver, f"/lots/{batch}", "reject",
                                     meaning="rejected", reason="dropped on the floor"))
    assert rejected["status"] == "rejected"
    assert chain_intact()


def test_whoever_recorded_or_corrected_results_does_not_decide(master_data, team, make_user,
                                                               record_counts, audit_seq,
                                                               audit_since, chain_intact):
    recorder = make_user("rex.recorder", "inspector", "qa_approver")
    corrector = make_user("cora.corrector", "inspector", "qa_approver")
    api = master_data
    api.effective_plan()
    number = api.inspection_of_lot(api.receive("5")["number"])["number"]
    # 5 pieces: every piece is inspected
    entries = [{"characteristic": "DIA", "value": "10.01"} for _ in range(5)]
    entries += [{"characteristic": "VIS", "passed": True} for _ in range(5)]
    api.ok(api.results(recorder, number, entries), 201)
    api.ok(api.results(corrector, number, [{"corrects": 1, "characteristic": "DIA",
                                            "value": "10.02", "reason": "misread gauge"}]),
           201)
    api.complete(number)
    path = f"/inspections/{number}"
    for user, action, meaning, reason in ((recorder, "accept", "approved", None),
                                          (recorder, "reject", "rejected", "test"),
                                          (corrector, "accept", "approved", None),
                                          (corrector, "reject", "rejected", "test")):
        counts, start = record_counts(), audit_seq()
        refused = api.transition(user, path, action, meaning=meaning, reason=reason)
        assert refused.status_code == 403, (user.username, action, refused.get_json())
        assert refused.get_json()["type"].endswith("/segregation-of-duties")
        assert [a for a, *_ in audit_since(start)] == ["signature.refused"]
        assert record_counts() == counts
    accepted = api.ok(api.transition(team.approver, path, "accept", meaning="approved"))
    assert accepted["state"] == "accepted"
    assert chain_intact()


def test_a_usage_decision_locks_the_lot_before_the_audit_head(master_data, team, backend,
                                                              app):
    """While another transaction holds the lot (as a manual disposition or a hold does),
    the usage decision waits for the lot without holding the audit head: the other
    transaction can still take the head, so neither deadlocks."""
    if backend != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's")
    api = master_data
    api.effective_plan()
    lot = api.receive("5")["number"]
    number = api.inspection_of_lot(lot)["number"]
    api.record_all(number, 5)
    api.complete(number)
    engine = app.extensions["qms"].db.engine
    responses = []
    with engine.connect() as other:
        other.execute(text("SELECT id FROM lots WHERE number = :n FOR UPDATE"), {"n": lot})
        decision = threading.Thread(target=lambda: responses.append(api.transition(
            team.approver, f"/inspections/{number}", "accept", meaning="approved")))
        decision.start()
        wait_for_a_lock_wait(engine, "the usage decision")
        other.execute(text("SET LOCAL lock_timeout = '5s'"))
        other.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        other.rollback()
        decision.join(30)
    assert len(responses) == 1 and responses[0].status_code == 200, responses[0].get_json()
    assert api.ok(api.get(team.auditor, f"/lots/{lot}"))["status"] == "released"



def test_a_lot_of_three_billion_pieces(master_data, team, chain_intact):
    api = master_data
    api.effective_plan()
    lot = api.receive("3000000000")["number"]
    inspection = api.inspection_of_lot(lot)
    # over 500,000 units, level II -> Q; AQL 1.0 at Q -> n = 1250, Ac 21, Re 22
    assert (inspection["lot_size"], inspection["code_letter"], inspection["sample_size"],
            inspection["accept_number"]) == (3000000000, "Q", 1250, 21)
    assert inspection["supplier"] == SUPPLIER
    assert chain_intact()


def test_above_aql_10_the_verdict_counts_nonconformities(master_data, team):
    api = master_data
    api.effective_plan(aql="15")
    number = api.inspection_of_lot(api.receive("5")["number"])["number"]
    inspection = api.ok(api.get(team.auditor, f"/inspections/{number}"))
    # 5 pieces, level II -> A; AQL 15 at A -> down to B: n = 3, Ac 1, Re 2
    assert (inspection["sample_size"], inspection["accept_number"],
            inspection["reject_number"]) == (3, 1, 2)
    entries = [{"characteristic": "DIA", "value": v} for v in ("10.50", "10.01", "10.01")]
    entries += [{"characteristic": "VIS", "passed": p} for p in (False, True, True)]
    summary = api.ok(api.results(team.inspector, number, entries), 201)["summary"]
    # one nonconforming unit, but two nonconformities: Re 2 reached
    assert (summary["nonconforming_units"], summary["nonconforming_results"],
            summary["sampling_verdict"]) == (1, 2, "reject")
