"""Every ERP event the decisions write validates against the published schema
(docs/erp-event.schema.json), and so does the example in docs/erp.md."""
from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft202012Validator
from sqlalchemy import select

from qms.erp.models import ErpEvent

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _validator() -> Draft202012Validator:
    schema = json.loads((DOCS / "erp-event.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_event_written_validates_against_the_schema(app, plant):
    released, rejected = plant.ready_batch(), plant.ready_batch()
    plant.ok(plant.release(released))
    plant.ok(plant.batch_action(plant.team.approver, rejected, "reject", meaning="rejected",
                                reason="label mix-up"))
    held = plant.lot()
    plant.close_deviation(plant.deviation(lots=[held]))
    with app.extensions["qms"].db.engine.connect() as connection:
        events = [json.loads(p) for p in connection.scalars(
            select(ErpEvent.payload).order_by(ErpEvent.seq))]
    assert {e["type"] for e in events} == {"batch.released", "batch.rejected",
                                           "lot.status_changed", "inspection.decided"}
    assert {"on_hold"} <= {e["status"] for e in events}
    validator = _validator()
    for event in events:
        assert not list(validator.iter_errors(event)), event
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))


def test_the_documented_example_validates_and_a_broken_event_does_not():
    text = (DOCS / "erp.md").read_text("utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    validator = _validator()
    assert not list(validator.iter_errors(example))
    for broken in ({**example, "quantity": 100000}, {**example, "disposition": "Free"},
                   {k: v for k, v in example.items() if k != "event_id"},
                   {**example, "occurred_at": "2026-12-07 14:00:00"}):
        assert list(validator.iter_errors(broken)), broken


def test_a_hold_and_its_end_carry_no_usage_decision(app, plant):
    lot = plant.lot()
    plant.close_deviation(plant.deviation(lots=[lot]))
    with app.extensions["qms"].db.engine.connect() as connection:
        events = [json.loads(p) for p in connection.scalars(
            select(ErpEvent.payload).where(ErpEvent.lot == lot).order_by(ErpEvent.seq))]
    assert [(e["previous_status"], e["status"], e["usage_decision"]) for e in events] == [
        ("quarantine", "released", "A"), ("released", "on_hold", None),
        ("on_hold", "released", None)]
