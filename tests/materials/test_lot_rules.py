"""Rules that hold for every version of a lot or batch, whatever path writes it."""
from __future__ import annotations

from datetime import date, timedelta


def test_a_lot_cannot_expire_before_it_was_received(basics, team, db_snapshot):
    materials = basics
    lot = materials.received("RM-API", release=False)
    received_on = materials.ok(materials.get(team.auditor, f"/lots/{lot}"))["received_on"]
    earlier = (date.fromisoformat(received_on) - timedelta(days=1)).isoformat()
    before = db_snapshot()
    refused = materials.patch(team.production, f"/lots/{lot}", {"expires_on": earlier})
    assert refused.status_code == 422 and "expires_on" in refused.get_json()["errors"]
    assert db_snapshot() == before


def test_a_batch_is_not_produced_in_the_future(basics, team, db_snapshot):
    materials = basics
    raw = materials.received("RM-API")
    batch = materials.ok(materials.produce("FG-TAB", [{"lot_number": raw, "quantity": "1"}],
                                           unit="pcs"), 201)["number"]
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    before = db_snapshot()
    refused = materials.patch(team.production, f"/batches/{batch}", {"produced_on": tomorrow})
    assert refused.status_code == 422 and "produced_on" in refused.get_json()["errors"]
    assert db_snapshot() == before
