"""A batch from production to release over HTTP, on every database under test: the release
check follows each step, the release is signed and sets the lot's status, the history and
signatures verify, and the audit chain stays intact."""
from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select, text

from qms.erp.models import ErpEvent
from tests.release.conftest import OPERATION
from tests.materials.support import wait_for_a_lock_wait


def test_from_production_to_release(plant, app, audit_since, audit_seq, chain_intact):
    team = plant.team
    lot = plant.lot()
    start = audit_seq()
    batch = plant.produce([(lot, "10")])
    assert plant.batch(batch)["status"] == "quarantine"
    check = plant.check(batch)
    assert (check["batch"], check["state"], check["material_kind"], check["ready"]) == (
        batch, "in_production", "finished", False)
    assert [g["code"] for g in check["gates"]] == [
        "in_process_inspections", "final_inspection", "inputs_released", "inputs_in_date",
        "inputs_not_rejected_or_on_hold", "no_open_deviations", "deviation_capas",
        "reviewed_by_production", "expiry_date", "lot_releasable"]
    assert plant.failing(batch) == ["in_process_inspections", "final_inspection",
                                    "reviewed_by_production"]
    assert plant.gate(batch, "inputs_released")["detail"] == \
        "the consumed lot released when consumed"
    early = plant.release(batch)
    assert early.status_code == 409 and early.get_json()["type"].endswith("/invalid-transition")

    plant.inspection(batch, "in_process", operation=OPERATION)
    plant.finish(batch)
    plant.inspection(batch, "final")
    assert plant.failing(batch) == ["reviewed_by_production"]
    submitted = plant.submit(batch)
    assert submitted["state"] == "pending_release"
    assert plant.check(batch)["ready"] is True

    before_release = audit_seq()
    released = plant.ok(plant.release(batch))
    assert (released["state"], released["status"]) == ("released", "released")
    assert [(s["signer"], s["meaning"]) for s in released["signatures"]] == [
        (team.production.username, "reviewed"), (team.approver.username, "released")]
    assert [t["action"] for t in released["transitions"]] == ["reject"]
    assert plant.check(batch)["ready"] is True

    history = plant.ok(plant.get(team.auditor, f"/batches/{batch}/history"))
    assert [v["action"] for v in history["versions"]] == [
        "create", "consume", "finish", "submit_for_release", "release"]
    assert all(s["verified"] and s["valid_for_current_version"]
               for s in history["signatures"])
    lot_history = plant.ok(plant.get(team.auditor, f"/lots/{batch}/history"))
    last = lot_history["versions"][-1]
    assert (last["action"], last["state"], last["changed_by"], last["reason"]) == (
        "released", "released", team.approver.username, f"batch {batch} released")

    # one transaction: the signature, the batch's new version, the lot following it
    assert [(action, actor, entity) for action, actor, entity, _ in
            audit_since(before_release)] == [
        ("signature.applied", team.approver.username, batch),
        ("batch.record.transitioned", team.approver.username, batch),
        ("lot.status.decided", team.approver.username, batch)]
    assert ("batch.lot.consumed", team.production.username, batch, None) in [
        (a, actor, e, None) for a, actor, e, _ in audit_since(start)]
    verified = plant.ok(plant.get(team.auditor, "/audit/verify"))  # no checkpoint written
    assert verified["verdict"] == "UNANCHORED" and verified["first_bad_seq"] is None
    assert chain_intact()


def test_each_decision_queues_its_erp_events_in_the_deciding_transaction(app, plant,
                                                                        chain_intact):
    """A release or rejection queues ``batch.released`` / ``batch.rejected`` after the
    lot's own ``lot.status_changed``, both naming the deciding signature; a hold and its end
    queue only the lot's status changes."""
    first, second = plant.ready_batch(), plant.ready_batch()
    plant.ok(plant.batch_action(plant.team.reviewer, second, "hold", reason="check labels"))
    plant.ok(plant.batch_action(plant.team.approver, second, "unhold", reason="labels fine"))
    plant.submit(second)
    plant.ok(plant.release(first))
    plant.ok(plant.batch_action(plant.team.approver, second, "reject", meaning="rejected",
                                reason="label mix-up"))
    with app.extensions["qms"].db.engine.connect() as connection:
        queued = [json.loads(p) for p in connection.scalars(
            select(ErpEvent.payload).where(ErpEvent.lot.in_([first, second]))
            .order_by(ErpEvent.seq))]
    # the batches' inspections were accepted first: one usage decision event each
    inspections = [e for e in queued if e["type"] == "inspection.decided"]
    assert {(e["batch"], e["usage_decision"]) for e in inspections} == {(first, "A"),
                                                                         (second, "A")}
    assert all(e["inspection"] and e["decided_by"]["meaning"] == "approved"
               for e in inspections)
    events = [e for e in queued if e["type"] != "inspection.decided"]
    assert [(e["type"], e["lot"], e["status"], e["usage_decision"]) for e in events] == [
        ("lot.status_changed", second, "on_hold", None),
        ("lot.status_changed", second, "quarantine", None),
        ("lot.status_changed", first, "released", "A"),
        ("batch.released", first, "released", "A"),
        ("lot.status_changed", second, "rejected", "R"),
        ("batch.rejected", second, "rejected", "R")]
    decided = events[2:]
    assert {e["decided_by"]["meaning"] for e in decided} == {"released", "rejected"}
    assert decided[0]["decided_by"]["signature_id"] == decided[1]["decided_by"]["signature_id"]
    assert decided[1]["batch"] == first and decided[3]["reason"] == "label mix-up"
    assert chain_intact()


def _release_while_another_holds(plant, app, lot: str, batch: str, then: str,
                                 params: dict) -> list:
    """Hold ``lot`` in another transaction, start the release (it waits for the lot), then
    run ``then`` in that transaction with a lock timeout: it must not wait on the release."""
    engine = app.extensions["qms"].db.engine
    responses = []
    with engine.connect() as other:
        other.execute(text("SELECT id FROM lots WHERE number = :n FOR UPDATE"), {"n": lot})
        release = threading.Thread(target=lambda: responses.append(plant.release(batch)))
        release.start()
        wait_for_a_lock_wait(engine, "the release")
        other.execute(text("SET LOCAL lock_timeout = '5s'"))
        other.execute(text(then), params)
        other.rollback()
        release.join(30)
    return responses


def test_a_release_locks_its_input_lots_before_the_audit_head(plant, backend, app):
    """While another transaction holds a consumed lot (as a deviation naming it does), the
    release waits for that lot without holding the audit head, so the other transaction can
    still take the head and neither deadlocks; the gates then judge the lot as it is."""
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writers hold the whole database")
    lot = plant.lot()
    batch = plant.ready_batch(inputs=[(lot, "10")])
    responses = _release_while_another_holds(
        plant, app, lot, batch, "SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE", {})
    assert len(responses) == 1 and responses[0].status_code == 200, responses[0].get_json()
    assert plant.status(batch) == "released"


def test_a_release_waiting_for_an_input_lot_holds_no_lock_on_its_own_lot(plant, backend,
                                                                        app):
    """Lots are locked in id order everywhere: the release, waiting for a consumed lot that
    another transaction holds, must not already hold the batch's own (higher-id) lot, which
    that transaction may lock next (a deviation naming both) - that would be a deadlock."""
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writers hold the whole database")
    lot = plant.lot()
    batch = plant.ready_batch(inputs=[(lot, "10")])
    responses = _release_while_another_holds(
        plant, app, lot, batch, "SELECT id FROM lots WHERE number = :n FOR UPDATE",
        {"n": batch})
    assert len(responses) == 1 and responses[0].status_code == 200, responses[0].get_json()

