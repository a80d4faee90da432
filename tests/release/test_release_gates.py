"""Each release gate in turn blocks the release of an otherwise ready batch (409
release-gates-failed listing exactly the failing gates, nothing written), says what is
wrong, and once that is put right the batch is released and its lot with it."""
from __future__ import annotations

from datetime import date, timedelta

from qms.db import utcnow
from qms.materials import batches
from tests.release.conftest import OPERATION


def blocked(plant, batch: str, codes: list[str], db_snapshot) -> dict[str, str]:
    """The release check and a release attempt both name exactly ``codes``; the attempt
    writes nothing. Returns code -> detail."""
    check = plant.check(batch)
    assert check["ready"] is False
    assert [g["code"] for g in check["gates"] if not g["passed"]] == codes, check
    before = db_snapshot()
    response = plant.release(batch)
    assert response.status_code == 409, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/release-gates-failed")
    assert [g["code"] for g in problem["gates"]] == codes
    assert all(g["passed"] is False and g["detail"] for g in problem["gates"])
    assert all(code in problem["detail"] for code in codes)
    assert db_snapshot() == before
    return {g["code"]: g["detail"] for g in problem["gates"]}


def released(plant, batch: str) -> dict:
    assert plant.check(batch)["ready"] is True
    document = plant.ok(plant.release(batch))
    assert (document["state"], document["status"]) == ("released", "released")
    assert plant.status(batch) == "released"
    return document


def test_in_process_inspections(plant, db_snapshot):
    batch = plant.ready_batch(in_process=False)
    detail = blocked(plant, batch, ["in_process_inspections"], db_snapshot)
    assert f"no accepted in-process inspection at {OPERATION}" in \
        detail["in_process_inspections"]
    number = plant.inspection(batch, "in_process", operation=OPERATION, decide=None)
    detail = blocked(plant, batch, ["in_process_inspections"], db_snapshot)
    assert f"{number} at {OPERATION} is completed" in detail["in_process_inspections"]
    plant.ok(plant.transition(plant.team.decider, f"/inspections/{number}", "accept",
                              meaning="approved"))
    assert plant.gate(batch, "in_process_inspections")["detail"] == \
        f"accepted: {number} at {OPERATION}"
    released(plant, batch)


def test_final_inspection(plant, db_snapshot):
    batch = plant.ready_batch(final=False)
    detail = blocked(plant, batch, ["final_inspection"], db_snapshot)
    assert "no accepted final inspection" in detail["final_inspection"]
    number = plant.ok(plant.post(plant.team.inspector, "/inspections",
                                 {"stage": "final", "batch_number": batch}), 201)["number"]
    assert f"{number} is open" in blocked(plant, batch, ["final_inspection"],
                                          db_snapshot)["final_inspection"]
    plant.ok(plant.post(plant.team.inspector, f"/inspections/{number}/results",
                        {"results": [{"characteristic": "VIS", "passed": True}]}), 201)
    plant.ok(plant.transition(plant.team.inspector, f"/inspections/{number}", "complete",
                              meaning="performed"))
    plant.ok(plant.transition(plant.team.decider, f"/inspections/{number}", "accept",
                              meaning="approved"))
    released(plant, batch)


def test_inputs_released(plant, db_snapshot, legacy_entry):
    quarantined = plant.ok(plant.post(plant.team.production, "/lots", {
        "material": "RM-API", "supplier": "SUP-ACME", "quantity": "50", "unit": "kg"}),
        201)["number"]
    batch = plant.produce([(plant.lot(), "10")])
    legacy_entry(batch, quarantined, "5", "transcribed from the paper batch record")
    plant.inspection(batch, "in_process", operation=OPERATION)
    plant.finish(batch)
    plant.inspection(batch, "final")
    plant.submit(batch)
    detail = blocked(plant, batch, ["inputs_released"], db_snapshot)["inputs_released"]
    assert f"{quarantined} was quarantine when 5 was consumed" in detail
    plant.return_to_production(batch)
    plant.reverse(batch, quarantined, "5", "reversed: the lot was never released")
    assert plant.gate(batch, "inputs_released")["passed"]
    plant.submit(batch)
    released(plant, batch)


def test_inputs_in_date(plant, db_snapshot, legacy_entry, monkeypatch):
    short = plant.lot(expires_on=date.today().isoformat())
    expires = plant.ok(plant.get(plant.team.auditor, f"/lots/{short}"))["expires_on"]
    batch = plant.produce([(plant.lot(), "10")])
    with monkeypatch.context() as later:  # an entry recorded two days after the expiry
        later.setattr(batches, "utcnow", lambda: utcnow() + timedelta(days=2))
        legacy_entry(batch, short, "5", "transcribed from the paper batch record")
    plant.inspection(batch, "in_process", operation=OPERATION)
    plant.finish(batch)
    plant.inspection(batch, "final")
    plant.submit(batch)
    detail = blocked(plant, batch, ["inputs_in_date"], db_snapshot)["inputs_in_date"]
    assert f"{short} expired on {expires} and was consumed on " in detail
    plant.return_to_production(batch)
    plant.reverse(batch, short, "5", "reversed: the lot had expired")
    plant.submit(batch)
    released(plant, batch)


def test_inputs_not_rejected_or_on_hold(plant, db_snapshot):
    lot = plant.lot()
    batch = plant.ready_batch(inputs=[(lot, "10")])
    deviation = plant.deviation(lots=[lot])
    details = blocked(plant, batch, ["inputs_not_rejected_or_on_hold", "no_open_deviations"],
                      db_snapshot)
    assert f"{lot} is on hold by {deviation}" in details["inputs_not_rejected_or_on_hold"]
    assert f"{deviation} is open and names input lot {lot}" in details["no_open_deviations"]
    plant.close_deviation(deviation)
    assert plant.status(lot) == "released"
    released(plant, batch)


def test_an_input_rejected_after_consumption_blocks_for_good(plant, db_snapshot):
    lot = plant.lot()
    batch = plant.ready_batch(inputs=[(lot, "10")])
    plant.ok(plant.transition(plant.team.approver, f"/lots/{lot}", "reject",
                              meaning="rejected", reason="supplier recall"))
    detail = blocked(plant, batch, ["inputs_not_rejected_or_on_hold"], db_snapshot)
    assert f"{lot} has been rejected since it was consumed: reject the batch" in \
        detail["inputs_not_rejected_or_on_hold"]
    rejected = plant.ok(plant.batch_action(plant.team.approver, batch, "reject",
                                           meaning="rejected", reason="input recalled"))
    assert (rejected["state"], rejected["status"]) == ("rejected", "rejected")


def test_no_open_deviations(plant, db_snapshot):
    batch = plant.ready_batch()
    deviation = plant.deviation(batches=[batch])
    details = blocked(plant, batch, ["no_open_deviations", "lot_releasable"], db_snapshot)
    assert f"{deviation} is open and names the batch {batch}: close or cancel it" in \
        details["no_open_deviations"]
    assert details["lot_releasable"].startswith(f"lot {batch} is on hold")
    plant.close_deviation(deviation)
    assert plant.status(batch) == "quarantine"
    released(plant, batch)


def test_a_batch_removed_from_a_deviation_no_longer_blocks(plant, db_snapshot):
    batch = plant.ready_batch()
    deviation = plant.deviation(batches=[batch])
    blocked(plant, batch, ["no_open_deviations", "lot_releasable"], db_snapshot)
    plant.ok(plant.post(plant.team.decider, f"/deviations/{deviation}/lots/removals",
                        {"lot_number": batch, "reason": "named the wrong batch"}))
    assert plant.status(batch) == "quarantine"
    released(plant, batch)


def test_deviation_capas(plant, db_snapshot):
    batch = plant.ready_batch()
    deviation = plant.deviation(batches=[batch])
    path = f"/deviations/{deviation}"
    plant.ok(plant.transition(plant.team.production, path, "submit_for_investigation"))
    plant.ok(plant.patch(plant.team.reviewer, path, {"capa_required": True},
                         reason="recurring drift"))
    detail = blocked(plant, batch, ["no_open_deviations", "deviation_capas", "lot_releasable"],
                     db_snapshot)["deviation_capas"]
    assert f"{deviation} requires a CAPA and has none" in detail
    capa = plant.ok(plant.post(plant.team.reviewer, "/capas", {
        "source": "deviation", "source_reference": deviation, "title": "Thermostat",
        "problem_statement": "Drift goes unnoticed.",
        "owner": plant.team.production.username}), 201)["number"]
    assert plant.gate(batch, "deviation_capas") == {
        "code": "deviation_capas", "passed": True, "detail": f"{deviation} has {capa}"}
    blocked(plant, batch, ["no_open_deviations", "lot_releasable"], db_snapshot)
    plant.ok(plant.patch(plant.team.reviewer, path, INVESTIGATION_TEXT,
                         reason="investigation complete"))
    plant.ok(plant.transition(plant.team.reviewer, path, "submit_for_closure"))
    plant.ok(plant.transition(plant.team.decider, path, "close", meaning="approved"))
    released(plant, batch)


INVESTIGATION_TEXT = {"investigation": "Sensor log.", "root_cause": "Thermostat drift.",
                      "impact_assessment": "No impact on the batch."}


def test_reviewed_by_production(plant, db_snapshot, legacy_entry):
    batch = plant.ready_batch(submit=False)
    assert plant.gate(batch, "reviewed_by_production") == {
        "code": "reviewed_by_production", "passed": False,
        "detail": "not reviewed: production submits the batch for release, signing the "
                  "batch record as reviewed"}
    assert plant.release(batch).get_json()["type"].endswith("/invalid-transition")
    version = plant.submit(batch)["version"]
    assert plant.gate(batch, "reviewed_by_production")["detail"] == \
        f"reviewed by {plant.team.production.full_name} (paul.production) on version {version}"
    # a late entry changes the batch record after it was reviewed
    legacy_entry(batch, plant.lot(), "5", "late entry from the paper record")
    detail = blocked(plant, batch, ["reviewed_by_production"],
                     db_snapshot)["reviewed_by_production"]
    assert f"signed version {version}; the batch record has changed since" in detail
    plant.return_to_production(batch)
    plant.submit(batch)
    released(plant, batch)


def test_expiry_date(plant, db_snapshot):
    """The output lot's expiry is batch record data: corrected on the batch before review."""
    batch = plant.ready_batch(submit=False)
    two_days_ago = (date.today() - timedelta(days=2)).isoformat()
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    plant.ok(plant.patch(plant.team.production, f"/batches/{batch}",
                         {"produced_on": two_days_ago, "expires_on": yesterday},
                         reason="shelf life per the stability study"))
    plant.submit(batch)
    detail = blocked(plant, batch, ["expiry_date"], db_snapshot)["expiry_date"]
    assert f"lot {batch} expired on {yesterday}" in detail
    plant.return_to_production(batch)
    corrected = (date.today() + timedelta(days=700)).isoformat()
    plant.ok(plant.patch(plant.team.production, f"/batches/{batch}", {"expires_on": corrected},
                         reason="typing error in the shelf life"))
    plant.submit(batch)
    assert plant.gate(batch, "expiry_date")["detail"] == f"expires on {corrected}"
    released(plant, batch)


def test_lot_releasable(plant, db_snapshot):
    """A lot rejected by hand stays rejected: the batch cannot be released, only rejected."""
    batch = plant.ready_batch()
    plant.ok(plant.transition(plant.team.approver, f"/lots/{batch}", "reject",
                              meaning="rejected", reason="dropped pallet"))
    detail = blocked(plant, batch, ["lot_releasable"], db_snapshot)["lot_releasable"]
    assert detail == f"lot {batch} is rejected: reject the batch"
    lot_version = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))["version"]
    rejected = plant.ok(plant.batch_action(plant.team.approver, batch, "reject",
                                           meaning="rejected", reason="dropped pallet"))
    assert (rejected["state"], rejected["status"]) == ("rejected", "rejected")
    assert plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))["version"] == lot_version


def test_the_batch_lot_is_not_released_by_hand(plant, db_snapshot):
    """Releasing the batch's lot by hand would skip every gate: refused, nothing written;
    the batch's release releases it."""
    batch = plant.ready_batch()
    before = db_snapshot()
    refused = plant.transition(plant.team.approver, f"/lots/{batch}", "release",
                               meaning="released")
    assert refused.status_code == 409 and refused.get_json()["batch"] == batch
    assert db_snapshot() == before
    released(plant, batch)
    assert plant.status(batch) == "released"
