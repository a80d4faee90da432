"""Batches consume released, in-date lots, in their unit, at most what is left, never in a
cycle; each refused input is named by its index and nothing is written."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from qms.errors import InvalidInput
from qms.identity.authentication import find_user
from qms.materials.batches import produce_batch
from qms.materials.models import Lot


@pytest.fixture
def stock(basics):
    """Two released lots of 100 kg and one in quarantine; an intermediate material."""
    basics.material("IM-GRAN", kind="intermediate", shelf_life_days=90)
    return {"a": basics.received(), "b": basics.received(),
            "quarantined": basics.received(release=False)}


def _refused(m, db_snapshot, inputs, material="IM-GRAN", **extra) -> dict:
    before = db_snapshot()
    response = m.produce(material, inputs, **extra)
    assert response.status_code == 422, response.get_json()
    assert db_snapshot() == before
    return response.get_json()["errors"]


def test_each_refused_input_is_named_by_index(basics, stock, db_snapshot):
    errors = _refused(basics, db_snapshot, [
        {"lot_number": stock["a"], "quantity": "10"},
        {"lot_number": stock["quarantined"], "quantity": "1"},
        {"lot_number": "NO-SUCH-LOT", "quantity": "1"},
        {"lot_number": stock["b"], "quantity": "1", "unit": "g"},
        {"lot_number": stock["b"], "quantity": "100.001"}])
    assert set(errors) == {"inputs.1.lot_number", "inputs.2.lot_number", "inputs.3.unit",
                           "inputs.4.quantity"}
    assert "is quarantine; only released lots" in errors["inputs.1.lot_number"][0]
    assert "no lot 'NO-SUCH-LOT'" in errors["inputs.2.lot_number"][0]
    assert "counted in kg" in errors["inputs.3.unit"][0]
    assert "only 100 kg" in errors["inputs.4.quantity"][0]


def test_two_inputs_of_one_lot_count_together(basics, stock, db_snapshot):
    errors = _refused(basics, db_snapshot, [{"lot_number": stock["a"], "quantity": "60"},
                                            {"lot_number": stock["a"], "quantity": "40.5"}])
    assert errors == {"inputs.1.quantity": [f"only 40 kg of lot {stock['a']} is left"]}
    made = basics.ok(basics.produce("IM-GRAN", [{"lot_number": stock["a"], "quantity": "60"},
                                                {"lot_number": stock["a"], "quantity": "40"}]),
                     201)
    assert [i["quantity"] for i in made["inputs"]] == ["60", "40"]
    errors = _refused(basics, db_snapshot, [{"lot_number": stock["a"], "quantity": "0.001"}])
    assert errors == {"inputs.0.quantity": [f"only 0 kg of lot {stock['a']} is left"]}


def test_wrong_material_kind_and_unit_of_the_batch(basics, stock, db_snapshot):
    errors = _refused(basics, db_snapshot, [], material="RM-API")
    assert "batches produce intermediate or finished" in errors["material"][0]
    errors = _refused(basics, db_snapshot, [], material="FG-TAB", unit="kg")
    assert "counted in pcs" in errors["unit"][0]


def test_a_lot_expired_by_date_is_refused_before_the_job_runs(app, basics, stock, uow):
    with uow() as session:
        lot = session.scalar(select(Lot).where(Lot.number == stock["a"]))
        later = lot.expires_on + timedelta(days=1)
        state = app.extensions["qms"]
        with pytest.raises(InvalidInput) as refused:
            produce_batch(session, state.workflows, state.numbering,
                          find_user(session, "paul.production"),
                          {"material": "IM-GRAN", "line": "L1", "quantity": "1", "unit": "kg",
                           "produced_on": later, "expires_on": later + timedelta(days=5),
                           "inputs": [{"lot_number": stock["a"], "quantity": "1"}]}, on=later)
        assert lot.state == "released"
    assert f"expired on {lot.expires_on.isoformat()}" in \
        refused.value.errors["inputs.0.lot_number"][0]


def _released_behind_the_api(app, number: str) -> None:
    """A produced lot released while its batch is still in production: a state the API no
    longer reaches (the batch's release decision releases its lot, after production), as in
    records migrated from paper. The cycle check must hold there too."""
    with app.extensions["qms"].db.engine.begin() as connection:
        connection.execute(update(Lot).where(Lot.number == number).values(state="released"))


def test_inputs_are_added_only_in_production_and_never_in_a_cycle(app, basics, stock, team,
                                                                   db_snapshot):
    m = basics
    m.material("IM-BLEND", kind="intermediate", shelf_life_days=90)
    gran = m.ok(m.produce("IM-GRAN", [{"lot_number": stock["a"], "quantity": "10"}]), 201)
    m.ok(m.transition(team.production, f"/batches/{gran['number']}", "finish"))
    m.release_batch(gran["number"])
    blend = m.ok(m.produce("IM-BLEND", [{"lot_number": gran["number"], "quantity": "5"}],
                           line="L2"), 201)
    _released_behind_the_api(app, blend["number"])
    # the granulate batch is produced: no more inputs
    before = db_snapshot()
    closed = m.post(team.production, f"/batches/{gran['number']}/inputs",
                    {"inputs": [{"lot_number": stock["b"], "quantity": "1"}]})
    assert closed.status_code == 409 and db_snapshot() == before
    # a new batch cannot consume its own lot, nor a lot made from it
    third = m.ok(m.produce("IM-GRAN", [{"lot_number": blend["number"], "quantity": "1"}],
                           line="L3"), 201)
    _released_behind_the_api(app, third["number"])
    before = db_snapshot()
    for lot in (third["number"],):
        refused = m.post(team.production, f"/batches/{third['number']}/inputs",
                         {"inputs": [{"lot_number": lot, "quantity": "1"}]})
        assert refused.status_code == 422
        assert "cycle" in refused.get_json()["errors"]["inputs.0.lot_number"][0]
    assert db_snapshot() == before
    fourth = m.ok(m.produce("IM-BLEND", [{"lot_number": third["number"], "quantity": "1"}],
                            line="L4"), 201)
    _released_behind_the_api(app, fourth["number"])
    before = db_snapshot()
    refused = m.post(team.production, f"/batches/{third['number']}/inputs",
                     {"inputs": [{"lot_number": fourth["number"], "quantity": "1"}]})
    assert "cycle" in refused.get_json()["errors"]["inputs.0.lot_number"][0]
    assert db_snapshot() == before
    added = m.ok(m.post(team.production, f"/batches/{third['number']}/inputs",
                        {"inputs": [{"lot_number": stock["b"], "quantity": "2.5"}]}))
    assert {i["lot"] for i in added["inputs"]} == {blend["number"], stock["b"]}
    history = m.ok(m.get(team.auditor, f"/batches/{third['number']}/history"))
    assert [(v["version"], v["action"]) for v in history["versions"]] == [
        (1, "create"), (2, "consume"), (3, "consume")]
    assert history["versions"][2]["reason"] == "1 input lot(s) consumed in production"


def test_a_consumption_booked_in_error_is_reversed_with_a_reason(app, basics, stock, team,
                                                                  db_snapshot, chain_intact):
    m = basics
    batch = m.ok(m.produce("IM-GRAN", [{"lot_number": stock["a"], "quantity": "60"}]),
                 201)["number"]
    path = f"/batches/{batch}/inputs/reversals"
    before = db_snapshot()
    for body, field in (({"lot_number": stock["a"], "quantity": "60.001", "reason": "x"},
                         "quantity"),
                        ({"lot_number": stock["b"], "quantity": "1", "reason": "x"},
                         "lot_number"),
                        ({"lot_number": "NOPE", "quantity": "1", "reason": "x"}, "lot_number"),
                        ({"lot_number": stock["a"], "quantity": "1", "reason": "  "}, "reason"),
                        ({"lot_number": stock["a"], "quantity": "-1", "reason": "x"},
                         "quantity"),
                        ({"lot_number": stock["a"], "quantity": 1, "reason": "x"}, "quantity")):
        refused = m.post(team.production, path, body)
        assert refused.status_code == 422, body
        assert field in refused.get_json()["errors"], (body, refused.get_json())
    assert db_snapshot() == before

    corrected = m.ok(m.post(team.production, path, {
        "lot_number": stock["a"], "quantity": "20", "reason": "scale misread: 40 kg used"}))
    assert corrected["inputs"] == [{"lot": stock["a"], "quantity": "60", "unit": "kg"},
                                   {"lot": stock["a"], "quantity": "-20", "unit": "kg"}]
    history = m.ok(m.get(team.auditor, f"/batches/{batch}/history"))["versions"]
    assert (history[-1]["action"], history[-1]["reason"]) == ("reverse",
                                                              "scale misread: 40 kg used")
    # the 20 kg are back: another batch may consume them, not more
    other = m.ok(m.produce("IM-GRAN", [{"lot_number": stock["a"], "quantity": "60"}],
                           line="L2"), 201)
    assert other["inputs"][0]["quantity"] == "60"
    trace = m.trace(stock["a"], "forward")
    assert sorted(e["quantity"] for e in trace["edges"] if e["to"] == batch) == ["-20", "60"]
    m.ok(m.transition(team.production, f"/batches/{batch}", "finish"))
    m.ok(m.post(team.production, path, {"lot_number": stock["a"], "quantity": "40",
                                        "reason": "wrong lot scanned"}))
    m.release_batch(batch)
    late = m.post(team.production, path, {"lot_number": stock["a"], "quantity": "1",
                                          "reason": "x"})
    assert late.status_code == 409
    assert chain_intact()
