"""The release decision: who may release (segregation of duties), rejection, hold and unhold
and what they do to the batch's lot, and bad input refused with nothing written."""
from __future__ import annotations

import pytest

from tests.release.conftest import OPERATION


def refused_for_segregation(plant, user, batch: str, record_counts, audit_since,
                            audit_seq) -> str:
    """``user`` may not release: 403 segregation-of-duties, only the refused signature is
    audited, no record changes. Returns the detail."""
    counts, start = record_counts(), audit_seq()
    response = plant.release(batch, user)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["type"].endswith("/segregation-of-duties")
    assert [(action, actor) for action, actor, *_ in audit_since(start)] == [
        ("signature.refused", user.username)]
    assert record_counts() == counts
    return response.get_json()["detail"]


def test_whoever_created_the_batch_does_not_release_it(plant, make_user, record_counts,
                                                       audit_since, audit_seq, chain_intact):
    creator = make_user("carl.creator", "production", "qa_approver")
    lot = plant.lot()
    batch = plant.produce([(lot, "10")], user=creator)
    plant.inspection(batch, "in_process", operation=OPERATION)
    plant.finish(batch)
    plant.inspection(batch, "final")
    plant.submit(batch)
    assert plant.check(batch)["ready"] is True
    detail = refused_for_segregation(plant, creator, batch, record_counts, audit_since,
                                     audit_seq)
    assert "carl.creator is an author" in detail
    assert plant.ok(plant.release(batch))["state"] == "released"
    assert chain_intact()


@pytest.mark.parametrize("part", ["opener", "recorder", "performer"])
def test_whoever_opened_recorded_or_performed_an_inspection_does_not_release(
        plant, make_user, record_counts, audit_since, audit_seq, part):
    inspector = make_user("iris.inspector", "inspector", "qa_approver")
    batch = plant.ready_batch(final=False, submit=False)
    plant.inspection(batch, "final", **{part: inspector})
    plant.submit(batch)
    assert plant.check(batch)["ready"] is True
    detail = refused_for_segregation(plant, inspector, batch, record_counts, audit_since,
                                     audit_seq)
    assert "iris.inspector" in detail and batch in detail
    assert plant.ok(plant.release(batch))["state"] == "released"


@pytest.mark.parametrize("step", ["inputs", "reversal", "finish"])
def test_whoever_recorded_inputs_or_finished_the_batch_does_not_release_it(
        plant, make_user, record_counts, audit_since, audit_seq, step):
    """Consuming a lot, reversing a consumption (issue 9, point 4: the reversal changes
    what the batch is made of) and finishing the batch are production steps: whoever took
    one does not release it, whatever QA role they also hold."""
    worker = make_user("wes.worker", "production", "qa_approver")
    lot = plant.lot()
    batch = plant.produce([(lot, "10")])
    plant.inspection(batch, "in_process", operation=OPERATION)
    if step == "inputs":
        plant.ok(plant.post(worker, f"/batches/{batch}/inputs",
                            {"inputs": [{"lot_number": plant.lot(), "quantity": "1"}],
                             "reason": "top-up"}))
        plant.finish(batch)
    elif step == "reversal":
        plant.ok(plant.post(worker, f"/batches/{batch}/inputs/reversals",
                            {"lot_number": lot, "quantity": "2", "reason": "2 kg returned"}))
        plant.finish(batch)
    else:
        plant.ok(plant.batch_action(worker, batch, "finish"))
    plant.inspection(batch, "final")
    plant.submit(batch)
    assert plant.check(batch)["ready"] is True
    detail = refused_for_segregation(plant, worker, batch, record_counts, audit_since,
                                     audit_seq)
    assert "wes.worker" in detail
    assert plant.ok(plant.release(batch))["state"] == "released"


def test_whoever_reviewed_the_batch_does_not_release_it(plant, make_user, record_counts,
                                                        audit_since, audit_seq):
    supervisor = make_user("sam.supervisor", "production", "qa_approver")
    batch = plant.ready_batch(submit=False)
    plant.submit(batch, user=supervisor)
    detail = refused_for_segregation(plant, supervisor, batch, record_counts, audit_since,
                                     audit_seq)
    assert "signed" in detail and "as reviewed" in detail
    assert plant.ok(plant.release(batch))["state"] == "released"


def test_bad_input_is_refused_and_nothing_is_written(plant, db_snapshot):
    batch = plant.ready_batch()
    approver = plant.team.approver
    signature = {"username": approver.username, "password": approver.password,
                 "meaning": "released"}
    path = f"/batches/{batch}/transitions"
    seen = plant.ok(plant.get(approver, f"/batches/{batch}"))["version"]
    cases = [
        ({"action": "release"}, "signature"),
        ({"action": "release", "signature": signature}, "version"),
        ({"action": "release", "signature": signature, "version": None}, "version"),
        ({"action": "release", "signature": signature, "version": "latest"}, "version"),
        ({"action": "release", "version": seen,
          "signature": {**signature, "meaning": "approved"}}, "signature.meaning"),
        ({"action": "release", "signature": {"username": approver.username,
                                             "meaning": "released"}}, "signature.password"),
        ({"action": "release", "signature": "anna"}, "signature"),
        ({"action": "release", "signature": signature, "reason": 12}, "reason"),
        ({"action": "release", "signature": signature, "extra": True}, "extra"),
        ({"signature": signature}, "action"),
        ({"action": "reject", "version": seen,
          "signature": {**signature, "meaning": "rejected"}}, "reason"),
        ({"action": "reject", "reason": "  ", "version": seen,
          "signature": {**signature, "meaning": "rejected"}}, "reason"),
        ({"action": "hold"}, "reason"),
    ]
    before = db_snapshot()
    for body, field in cases:
        response = plant.post(approver, path, body)
        assert response.status_code == 422, (body, response.get_json())
        named = response.get_json()["errors"]
        assert any(key == field or key.startswith(f"{field}.") for key in named), (body, named)
    assert db_snapshot() == before
    missing = plant.get(plant.team.auditor, "/batches/B-NONE/release-check")
    assert missing.status_code == 404 and missing.get_json()["type"].endswith("/not-found")
    assert plant.ok(plant.release(batch))["state"] == "released"


def test_only_a_qa_approver_releases(plant, db_snapshot):
    batch = plant.ready_batch()
    before = db_snapshot()
    for user in (plant.team.production, plant.team.reviewer, plant.team.inspector,
                 plant.team.auditor):
        response = plant.release(batch, user)
        assert response.status_code == 403, (user.username, response.get_json())
        assert response.get_json()["type"].endswith("/not-permitted")
    assert db_snapshot() == before
    check = plant.ok(plant.get(plant.team.auditor, f"/batches/{batch}"))
    release = next(t for t in check["transitions"] if t["action"] == "release")
    assert (release["meaning"], release["permission"], release["allowed"]) == (
        "released", "batch.release", False)


def test_rejection_needs_a_reason_and_rejects_the_lot(plant):
    batch = plant.ready_batch()
    rejected = plant.ok(plant.batch_action(plant.team.approver, batch, "reject",
                                           meaning="rejected", reason="tablets too soft"))
    assert (rejected["state"], rejected["status"], rejected["transitions"]) == (
        "rejected", "rejected", [])
    assert [s["meaning"] for s in rejected["signatures"]] == ["reviewed", "rejected"]
    lot = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}/history"))
    assert lot["versions"][-1]["action"] == "rejected"
    assert lot["versions"][-1]["reason"] == f"batch {batch} rejected: tablets too soft"


def test_a_rejected_inspection_blocks_release_for_good(plant, db_snapshot):
    batch = plant.ready_batch(final=False, submit=False)
    number = plant.inspection(batch, "final", passed=False, decide="reject")
    plant.inspection(batch, "final")  # a second final inspection, accepted
    plant.submit(batch)
    response = plant.release(batch)
    assert response.status_code == 409
    (gate,) = response.get_json()["gates"]
    assert gate["code"] == "final_inspection"
    assert f"{number} was rejected: the batch cannot be released (reject it)" in gate["detail"]


def test_a_released_batch_can_be_rejected_later(plant):
    batch = plant.ready_batch()
    plant.ok(plant.release(batch))
    recalled = plant.ok(plant.batch_action(plant.team.approver, batch, "reject",
                                           meaning="rejected", reason="market complaint"))
    assert (recalled["state"], recalled["status"]) == ("rejected", "rejected")


def test_return_sends_the_batch_back_for_review(plant):
    batch = plant.ready_batch()
    returned = plant.return_to_production(batch)
    assert returned["state"] == "produced"
    assert [t["action"] for t in returned["transitions"]] == [
        "submit_for_release", "reject", "hold"]
    plant.submit(batch)
    assert plant.ok(plant.release(batch))["state"] == "released"


def test_hold_puts_the_lot_on_hold_and_unhold_sends_the_batch_back(plant, audit_since,
                                                                   audit_seq):
    batch = plant.ready_batch()
    start = audit_seq()
    held = plant.ok(plant.batch_action(plant.team.reviewer, batch, "hold",
                                       reason="customer complaint on a sister batch"))
    assert (held["state"], held["status"]) == ("on_hold", "on_hold")
    lot = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))
    assert lot["status_before_hold"] == "quarantine"
    refused = plant.release(batch)
    assert refused.status_code == 409
    assert refused.get_json()["type"].endswith("/invalid-transition")
    unheld = plant.ok(plant.batch_action(plant.team.approver, batch, "unhold",
                                         reason="complaint not confirmed"))
    assert (unheld["state"], unheld["status"]) == ("produced", "quarantine")
    assert [(a, e) for a, _, e, _ in audit_since(start)] == [
        ("batch.record.transitioned", batch), ("lot.hold.placed", batch),
        ("batch.record.transitioned", batch), ("lot.hold.lifted", batch)]
    plant.submit(batch)
    assert plant.ok(plant.release(batch))["state"] == "released"


def test_unhold_leaves_the_lot_held_while_a_deviation_names_it(plant):
    batch = plant.ready_batch()
    plant.ok(plant.batch_action(plant.team.reviewer, batch, "hold", reason="suspected mix-up"))
    deviation = plant.deviation(batches=[batch])
    unheld = plant.ok(plant.batch_action(plant.team.approver, batch, "unhold",
                                         reason="the batch itself is fine"))
    assert (unheld["state"], unheld["status"]) == ("produced", "on_hold")
    plant.close_deviation(deviation)
    assert plant.status(batch) == "quarantine"


def test_a_deviation_ending_leaves_the_lot_held_while_its_batch_is_on_hold(plant):
    batch = plant.ready_batch()
    deviation = plant.deviation(batches=[batch])
    plant.ok(plant.batch_action(plant.team.reviewer, batch, "hold", reason="suspected mix-up"))
    plant.close_deviation(deviation)
    assert plant.status(batch) == "on_hold"  # the batch's own hold still holds it
    plant.ok(plant.batch_action(plant.team.approver, batch, "unhold", reason="checked"))
    assert plant.status(batch) == "quarantine"


def test_rejecting_a_held_batch_ends_its_hold(plant):
    batch = plant.ready_batch()
    plant.ok(plant.batch_action(plant.team.reviewer, batch, "hold", reason="foreign particle"))
    rejected = plant.ok(plant.batch_action(plant.team.approver, batch, "reject",
                                           meaning="rejected", reason="particle confirmed"))
    assert (rejected["state"], rejected["status"]) == ("rejected", "rejected")
    lot = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}/history"))
    assert [v["action"] for v in lot["versions"][-3:]] == ["hold", "rejected", "unhold"]
    assert lot["versions"][-1]["state"] == "rejected"


def test_batches_are_listed_by_every_state_of_their_workflow(app, plant):
    """The list filter knows every state the batch workflow has (config/workflows.toml)."""
    from qms.materials.schemas import BATCH_STATES
    assert BATCH_STATES == list(app.extensions["qms"].workflows.get("batch").states)
    batch = plant.ready_batch()
    plant.ok(plant.release(batch))
    listed = plant.ok(plant.get(plant.team.auditor, "/batches", state="released"))
    assert [b["number"] for b in listed] == [batch]
