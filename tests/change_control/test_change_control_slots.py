"""The approval slot rules as plain functions: which slots each risk level requires, and
which one a signer fills, without a database."""
from __future__ import annotations

import pytest

from qms.change_control.approvals import (approvals_complete, open_slots, required_slots,
                                          slot_for)

QA, PROD, BOTH = ["qa_approver"], ["production"], ["qa_approver", "production"]


@pytest.mark.parametrize("risk, slots", [
    ("low", ["qa_1"]),
    ("medium", ["qa_1", "production"]),
    ("high", ["qa_1", "qa_2", "production"]),
])
def test_required_slots_per_risk(risk, slots):
    assert [slot.name for slot in required_slots(risk)] == slots
    assert not approvals_complete(risk, [])
    assert approvals_complete(risk, slots)


@pytest.mark.parametrize("risk, filled, roles, expected", [
    ("low", [], QA, "qa_1"),
    ("low", [], PROD, None),
    ("low", [], ["qa_reviewer", "inspector"], None),
    ("low", ["qa_1"], QA, None),
    ("medium", [], QA, "qa_1"),
    ("medium", [], PROD, "production"),
    ("medium", [], BOTH, "qa_1"),
    ("medium", ["qa_1"], BOTH, "production"),
    ("medium", ["qa_1"], QA, None),
    ("medium", ["production"], PROD, None),
    ("medium", ["production"], BOTH, "qa_1"),
    ("high", [], QA, "qa_1"),
    ("high", ["qa_1"], QA, "qa_2"),
    ("high", ["qa_1", "qa_2"], QA, None),
    ("high", ["qa_1", "qa_2"], BOTH, "production"),
    ("high", ["production"], PROD, None),
    ("high", ["production", "qa_1"], QA, "qa_2"),
    ("high", ["qa_1", "qa_2", "production"], BOTH, None),
])
def test_which_slot_a_signer_fills(risk, filled, roles, expected):
    slot = slot_for(risk, filled, roles)
    assert (slot.name if slot else None) == expected


def test_open_slots_keep_their_order():
    assert [s.name for s in open_slots("high", ["qa_1"])] == ["qa_2", "production"]


def test_unknown_risk_is_an_error():
    with pytest.raises(ValueError):
        required_slots("extreme")
