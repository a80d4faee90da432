"""The gate rules as plain functions of a batch's facts, without a database: the cases the
HTTP tests cannot reach (a lot without an expiry date, reversed entries, operations without
an inspection) and the order and selection of gates."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal

from qms.release.gates import (GATES, Consumed, DeviationFact, InputFact, InspectionFact,
                               ReleaseFacts, ReviewFact, evaluate)

TODAY = date(2026, 3, 10)
AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def accepted(number: str, stage: str, operation: str | None = None) -> InspectionFact:
    return InspectionFact(number, stage, operation, "accepted")


def entry(quantity: str, status: str = "released", expires: date = date(2027, 1, 1),
          on: date = date(2026, 3, 1)) -> Consumed:
    return Consumed(Decimal(quantity), on, status, expires)


READY = ReleaseFacts(
    batch="B1", lot="B1", lot_status="quarantine", expires_on=date(2028, 1, 1), today=TODAY,
    inspections=(accepted("INS-1", "in_process", "OP-10"), accepted("INS-2", "final")),
    plan_operations=("OP-10",),
    inputs=(InputFact("RM-1", "released", (entry("10"),)),),
    open_deviations=(), capa_deviations=(),
    reviews=(ReviewFact("paul", "Paul P", AT, 4, True),))


def results(facts: ReleaseFacts) -> dict[str, tuple[bool, str]]:
    return {g.code: (g.passed, g.detail) for g in evaluate(facts, GATES)}


def failing(facts: ReleaseFacts) -> dict[str, str]:
    return {code: detail for code, (passed, detail) in results(facts).items() if not passed}


def test_a_ready_batch_passes_every_gate_in_order():
    gates = evaluate(READY, reversed(list(GATES)))
    assert [g.code for g in gates] == list(GATES)
    assert all(g.passed for g in gates)
    assert [g.code for g in evaluate(READY, ["expiry_date", "final_inspection"])] == [
        "final_inspection", "expiry_date"]


def test_every_operation_with_an_effective_plan_needs_an_accepted_inspection():
    facts = replace(READY, plan_operations=("OP-10", "OP-20"))
    assert failing(facts) == {"in_process_inspections": "no accepted in-process inspection "
                              "at OP-20 (it has an effective plan): open one against the batch"}
    no_plan_no_inspection = replace(READY, plan_operations=(), inspections=READY.inspections[1:])
    assert "no accepted in-process inspection of the batch" in \
        failing(no_plan_no_inspection)["in_process_inspections"]


def test_cancelled_inspections_do_not_count_and_rejected_ones_block():
    cancelled = InspectionFact("INS-3", "final", None, "cancelled")
    assert failing(replace(READY, inspections=READY.inspections + (cancelled,))) == {}
    rejected = InspectionFact("INS-4", "final", None, "rejected")
    assert failing(replace(READY, inspections=READY.inspections + (rejected,))) == {
        "final_inspection": "INS-4 was rejected: the batch cannot be released (reject it)"}


def test_a_fully_reversed_input_no_longer_counts():
    bad = InputFact("RM-2", "quarantine", (entry("5", status="quarantine"), entry("-5")))
    assert failing(replace(READY, inputs=READY.inputs + (bad,))) == {}
    again = InputFact("RM-2", "released", bad.entries + (entry("5"),))
    assert set(failing(replace(READY, inputs=READY.inputs + (again,)))) == {"inputs_released"}


def test_an_input_consumed_after_its_expiry():
    late = InputFact("RM-3", "released", (entry("2", expires=date(2026, 2, 28)),))
    assert failing(replace(READY, inputs=(late,))) == {
        "inputs_in_date": "RM-3 expired on 2026-02-28 and was consumed on 2026-03-01: correct "
                          "the genealogy (a reversing entry) or reject the batch"}
    on_the_day = InputFact("RM-3", "released", (entry("2", expires=date(2026, 3, 1)),))
    assert failing(replace(READY, inputs=(on_the_day,))) == {}


def test_a_lot_without_an_expiry_date_or_past_it():
    assert failing(replace(READY, expires_on=None)) == {
        "expiry_date": "lot B1 has no expiry date: correct the lot's expires_on (reason "
                       "required)"}
    assert failing(replace(READY, expires_on=date(2026, 3, 9), lot_status="expired")) == {
        "expiry_date": "lot B1 expired on 2026-03-09: correct the lot's expires_on if it is "
                       "wrong, else reject the batch",
        "lot_releasable": "lot B1 is expired: reject the batch"}
    assert failing(replace(READY, expires_on=TODAY)) == {}


def test_deviations_and_their_capas():
    open_one = DeviationFact("DEV-1", "in_investigation", ("B1", "RM-1"), True, ())
    facts = replace(READY, open_deviations=(open_one,), capa_deviations=(open_one,))
    assert failing(facts) == {
        "no_open_deviations": "DEV-1 is in investigation and names the batch B1, input lot "
                              "RM-1: close or cancel it",
        "deviation_capas": "DEV-1 requires a CAPA and has none: raise one with source "
                           "deviation and reference DEV-1"}
    closed = replace(open_one, state="closed", capas=("CAPA-1",))
    assert results(replace(READY, capa_deviations=(closed,)))["deviation_capas"] == (
        True, "DEV-1 has CAPA-1")


def test_only_a_review_of_the_current_content_counts():
    stale = ReviewFact("paul", "Paul P", AT, 4, False)
    assert "signed version 4; the batch record has changed since" in \
        failing(replace(READY, reviews=(stale,)))["reviewed_by_production"]
    fresh = ReviewFact("pia", "Pia Q", AT, 7, True)
    assert results(replace(READY, reviews=(stale, fresh)))["reviewed_by_production"] == (
        True, "reviewed by Pia Q (pia) on version 7")


def test_a_held_input_names_what_holds_it():
    held = InputFact("RM-1", "on_hold", READY.inputs[0].entries, ("DEV-9",))
    assert failing(replace(READY, inputs=(held,))) == {
        "inputs_not_rejected_or_on_hold": "RM-1 is on hold by DEV-9: close the deviation, or "
                                          "reject the batch"}
