"""Materials end to end over HTTP: master data, an approved supplier, lots received and
released by QA, an intermediate batch consuming them, a finished batch consuming the
intermediate, and the trace both ways; the audit chain verified at the end."""
from __future__ import annotations

import re
from datetime import date, timedelta

from qms.materials.schemas import TraceOut


def test_receive_release_produce_and_trace(basics, team, audit_events, chain_intact):
    m = basics
    m.material("IM-GRAN", kind="intermediate", shelf_life_days=90)
    m.material("PK-BLISTER", kind="packaging", unit="pcs", shelf_life_days=None)
    api = m.received("RM-API", quantity="100.5", supplier_lot="ACME-778")
    excipient = m.received("RM-API", quantity="20")
    blister = m.received("PK-BLISTER", quantity="5000", unit="pcs",
                         expires_on=(date.today() + timedelta(days=400)).isoformat())
    today = date.today()
    assert re.fullmatch(rf"RM-API-{today:%y%m%d}-00[12]", api)
    assert excipient.endswith("-002") and blister.endswith("-001")

    lot = m.ok(m.get(team.auditor, f"/lots/{api}"))
    assert (lot["status"], lot["material"], lot["supplier"], lot["quantity"], lot["unit"],
            lot["origin"]) == ("released", "RM-API", "SUP-ACME", "100.5", "kg", "received")
    assert lot["expires_on"] == (today + timedelta(days=365)).isoformat()
    assert [s["meaning"] for s in lot["signatures"]] == ["released"]

    granulate = m.ok(m.produce("IM-GRAN", [{"lot_number": api, "quantity": "60.25"},
                                           {"lot_number": excipient, "quantity": "20"}],
                               quantity="80"), 201)
    number = granulate["number"]
    assert re.fullmatch(rf"B{today:%Y%m}-L1-0001", number)
    assert (granulate["state"], granulate["status"], granulate["version"]) == \
        ("in_production", "quarantine", 2)
    assert granulate["inputs"] == [{"lot": api, "quantity": "60.25", "unit": "kg"},
                                   {"lot": excipient, "quantity": "20", "unit": "kg"}]
    assert granulate["expires_on"] == (today + timedelta(days=90)).isoformat()
    output = m.ok(m.get(team.auditor, f"/lots/{number}"))
    assert (output["origin"], output["status"], output["supplier"]) == \
        ("produced", "quarantine", None)
    m.ok(m.transition(team.production, f"/batches/{number}", "finish"))
    refused = m.transition(team.approver, f"/lots/{number}", "release", meaning="released")
    assert refused.status_code == 409 and refused.get_json()["batch"] == number
    assert m.release_batch(number)["status"] == "released"

    tablets = m.ok(m.produce("FG-TAB", [{"lot_number": number, "quantity": "79"},
                                        {"lot_number": blister, "quantity": "1000",
                                         "unit": "pcs"}],
                             quantity="100000", unit="pcs", line="L2"), 201)
    more = m.ok(m.post(team.production, f"/batches/{tablets['number']}/inputs",
                       {"inputs": [{"lot_number": api, "quantity": "40.25"}],
                        "reason": "top-up of API"}))
    assert more["version"] == 3 and len(more["inputs"]) == 3

    backward = m.trace(tablets["number"], "backward")
    depths = {node["number"]: node["depth"] for node in backward["nodes"]}
    # the API lot went in directly and through the granulate: its depth is the shortest
    assert depths == {tablets["number"]: 0, number: 1, blister: 1, api: 1, excipient: 2}
    assert backward["counts"]["lots"] == 5 and backward["counts"]["edges"] == 5
    assert TraceOut().dump(backward) == backward  # the answer is what OpenAPI documents
    api_node = next(n for n in backward["nodes"] if n["number"] == api)
    assert (api_node["material"], api_node["supplier"], api_node["kind"],
            api_node["status"]) == ("RM-API", "SUP-ACME", "raw", "released")
    forward = m.trace(api, "forward")
    assert {(n["number"], n["depth"]) for n in forward["nodes"]} == {
        (api, 0), (number, 1), (tablets["number"], 1)}
    assert {(e["from"], e["to"], e["quantity"]) for e in forward["edges"]} == {
        (api, number, "60.25"), (api, tablets["number"], "40.25"),
        (number, tablets["number"], "79")}

    actions = [event[0] for event in audit_events()]
    assert "batch.lot.consumed" in actions and "lot.record.transitioned" in actions
    assert chain_intact()
