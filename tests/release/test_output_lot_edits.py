"""The batch's output lot is changed only through its batch (issue 9, points 3 and 4).

A produced lot's data belongs to the batch record: ``PATCH /lots/{n}`` refuses it (409
naming the batch, nothing written), and the batch edit corrects the lot's expiry date in a
new batch version, so that whoever corrected it is an author of the batch (and does not
release it) and a release names the version, expiry included, that the approver saw.
"""
from __future__ import annotations

from datetime import date, timedelta

from tests.release.test_release_decisions import refused_for_segregation


def _later(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def test_the_output_lot_is_not_edited_on_its_own(plant, make_user, db_snapshot):
    """The reviewer's attack: someone with production and QA approver roles changes the
    output lot's expiry, then releases the batch as a non-author. The edit is refused and
    changes nothing; the release then signs the expiry production reviewed."""
    both = make_user("pat.both", "production", "qa_approver")
    plant.headers(both)
    batch = plant.ready_batch()
    lot_before = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))
    before = db_snapshot()
    response = plant.patch(both, f"/lots/{batch}", {"expires_on": _later(3000)},
                           reason="longer shelf life")
    assert response.status_code == 409, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/conflict")
    assert problem["batch"] == batch
    assert f"PATCH /api/v1/batches/{batch}" in problem["detail"]
    assert db_snapshot() == before
    assert plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}")) == lot_before
    released = plant.ok(plant.release(batch, both))
    assert released["expires_on"] == lot_before["expires_on"]


def test_a_received_lot_in_quarantine_is_still_corrected(plant):
    lot = plant.ok(plant.post(plant.team.production, "/lots", {
        "material": "RM-API", "supplier": "SUP-ACME", "quantity": "5", "unit": "kg"}),
        201)["number"]
    changed = plant.ok(plant.patch(plant.team.production, f"/lots/{lot}",
                                   {"expires_on": _later(100)}, reason="per the CoA"))
    assert (changed["expires_on"], changed["version"]) == (_later(100), 2)


def test_a_batch_edit_corrects_its_lot_expiry_and_makes_the_editor_an_author(
        plant, make_user, record_counts, audit_since, audit_seq, chain_intact):
    both = make_user("pat.both", "production", "qa_approver")
    plant.headers(both)
    batch = plant.ready_batch(submit=False)
    version = plant.batch(batch)["version"]
    lot_version = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))["version"]
    start = audit_seq()
    edited = plant.ok(plant.patch(both, f"/batches/{batch}", {"expires_on": _later(500)},
                                  reason="shelf life per the stability study"))
    assert (edited["version"], edited["expires_on"]) == (version + 1, _later(500))
    lot = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}"))
    assert (lot["version"], lot["expires_on"]) == (lot_version + 1, _later(500))
    assert [(action, actor, entity) for action, actor, entity, _ in audit_since(start)] == [
        ("batch.record.updated", "pat.both", batch), ("lot.record.revised", "pat.both", batch)]
    history = plant.ok(plant.get(plant.team.auditor, f"/lots/{batch}/history"))
    assert history["versions"][-1]["action"] == "batch_edit"
    batch_history = plant.ok(plant.get(plant.team.auditor, f"/batches/{batch}/history"))
    assert batch_history["versions"][-1]["content"]["expires_on"] == _later(500)
    plant.submit(batch)
    detail = refused_for_segregation(plant, both, batch, record_counts, audit_since,
                                     audit_seq)
    assert "pat.both is an author" in detail
    assert plant.ok(plant.release(batch))["expires_on"] == _later(500)
    assert chain_intact()


def test_a_release_naming_the_version_before_an_expiry_correction_is_refused(
        plant, db_snapshot):
    batch = plant.ready_batch()
    seen = plant.batch(batch)["version"]
    plant.return_to_production(batch)
    plant.ok(plant.patch(plant.team.production, f"/batches/{batch}",
                         {"expires_on": _later(400)}, reason="typing error"))
    plant.submit(batch)
    before = db_snapshot()
    response = plant.transition(plant.team.approver, f"/batches/{batch}", "release",
                                meaning="released", version=seen)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["type"].endswith("/conflict")
    assert db_snapshot() == before
    released = plant.ok(plant.release(batch))
    signed = released["signatures"][-1]
    assert signed["meaning"] == "released"
    assert _signed_content(plant, batch, signed)["expires_on"] == _later(400)


def _signed_content(plant, batch: str, signature: dict) -> dict:
    """The content of the batch version a signature names (its hash checked)."""
    history = plant.ok(plant.get(plant.team.auditor, f"/batches/{batch}/history"))
    version = next(v for v in history["versions"]
                   if v["version"] == signature["record_version"])
    assert version["content_hash"] == signature["content_hash"]
    return version["content"]


def test_the_expiry_edit_keeps_the_lot_rules(plant, db_snapshot):
    """Not before the production date (422 naming the field); only while the lot is in
    quarantine (409); not after production's review (409). Nothing is written."""
    batch = plant.ready_batch(submit=False)
    produced_on = plant.batch(batch)["produced_on"]
    earlier = (date.fromisoformat(produced_on) - timedelta(days=1)).isoformat()
    before = db_snapshot()
    response = plant.patch(plant.team.production, f"/batches/{batch}", {"expires_on": earlier})
    assert response.status_code == 422 and "expires_on" in response.get_json()["errors"]
    assert db_snapshot() == before
    plant.submit(batch)
    before = db_snapshot()
    response = plant.patch(plant.team.production, f"/batches/{batch}",
                           {"expires_on": _later(90)})
    assert response.status_code == 409, response.get_json()
    assert db_snapshot() == before
    plant.return_to_production(batch)
    plant.ok(plant.transition(plant.team.approver, f"/lots/{batch}", "reject",
                              meaning="rejected", reason="dropped pallet"))
    before = db_snapshot()
    response = plant.patch(plant.team.production, f"/batches/{batch}",
                           {"expires_on": _later(90)})
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["lot_status"] == "rejected"
    assert db_snapshot() == before
