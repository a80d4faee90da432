"""MIL-STD-105E (ISO 2859-1, ANSI/ASQ Z1.4) single sampling, normal inspection: published
points of Tables I and II-A, the arrows, 100 % inspection, and properties of every cell."""
from __future__ import annotations

from decimal import Decimal

import pytest

from qms.inspection.aql import (AQL_SERIES, LETTERS, LEVELS, SAMPLE_SIZES, aql_key,
                                code_letter, plan_for_letter, sampling_plan)


@pytest.mark.parametrize("lot_size, level, letter", [
    (2, "II", "A"), (8, "II", "A"), (9, "II", "B"), (50, "II", "D"), (51, "II", "E"),
    (500, "II", "H"), (1000, "II", "J"), (1200, "II", "J"), (1201, "II", "K"),
    (10000, "II", "L"), (500000, "II", "P"), (500001, "II", "Q"),
    (1000, "I", "G"), (1000, "III", "K"), (8, "III", "B"), (2, "I", "A"),
    (10**9, "I", "N"), (10**9, "III", "R"), (1, "II", "A"),
])
def test_table_one_code_letters(lot_size, level, letter):
    assert code_letter(lot_size, level) == letter


@pytest.mark.parametrize("lot_size, level, aql, expected", [
    # (code letter, plan letter, n, Ac, Re): the standard's worked points
    (1000, "II", "1.0", ("J", "J", 80, 2, 3)),
    (1000, "II", "2.5", ("J", "J", 80, 5, 6)),
    (1000, "II", "0.65", ("J", "J", 80, 1, 2)),
    (500, "II", "2.5", ("H", "H", 50, 3, 4)),
    (500, "II", "4.0", ("H", "H", 50, 5, 6)),
    (3000, "II", "1.0", ("K", "K", 125, 3, 4)),
    (10000, "II", "0.65", ("L", "L", 200, 3, 4)),
    (1000, "II", "10", ("J", "J", 80, 14, 15)),
    (150, "II", "6.5", ("F", "F", 20, 3, 4)),
    # arrows: down to the first plan below, up to the first plan above
    (50, "II", "1.0", ("D", "E", 13, 0, 1)),      # D: down to E (0 1)
    (150, "II", "1.0", ("F", "E", 13, 0, 1)),     # F: up to E
    (500, "II", "0.65", ("H", "J", 80, 1, 2)),    # H: down to J (1 2)
    (80, "II", "0.65", ("E", "F", 20, 0, 1)),
    (20000, "II", "10", ("M", "K", 125, 21, 22)),  # below 21 22: up
])
def test_table_two_a_plans(lot_size, level, aql, expected):
    plan = sampling_plan(lot_size, level, aql)
    assert (plan.code_letter, plan.plan_letter, plan.sample_size, plan.accept,
            plan.reject) == expected
    assert plan.full_inspection is False


def test_letter_a_at_aql_one_follows_the_arrow_down_to_e():
    assert plan_for_letter("A", "1.0") == ("E", 13, 0, 1)
    assert plan_for_letter("A", Decimal("6.5")) == ("A", 2, 0, 1)


def test_a_sample_as_large_as_the_lot_means_every_unit():
    plan = sampling_plan(50, "II", "0.10")  # D -> down to K, n = 125 > 50
    assert (plan.plan_letter, plan.sample_size, plan.accept, plan.full_inspection) == \
        ("K", 50, 0, True)
    assert sampling_plan(8, "II", "6.5").sample_size == 2  # A: 2 of 8, not 100 %
    assert sampling_plan(2, "II", "6.5").full_inspection is True
    assert sampling_plan(1, "III", "1.0").sample_size == 1


def test_edges_of_the_table():
    # the two cells whose printed arrow would leave the table
    assert plan_for_letter("A", "10") == ("C", 5, 1, 2)
    assert plan_for_letter("R", "0.015") == ("P", 800, 0, 1)
    assert plan_for_letter("R", "0.010") == ("Q", 1250, 0, 1)
    assert plan_for_letter("A", "1000") == ("A", 2, 30, 31)
    assert plan_for_letter("B", "1000") == ("B", 3, 44, 45)
    assert plan_for_letter("C", "1000") == ("B", 3, 44, 45)


@pytest.mark.parametrize("letter", LETTERS)
@pytest.mark.parametrize("aql", AQL_SERIES)
def test_every_cell_resolves_to_a_standard_plan(letter, aql):
    plan_letter, size, accept, reject = plan_for_letter(letter, aql)
    assert reject == accept + 1
    assert size == SAMPLE_SIZES[plan_letter]
    assert accept in (0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44)


@pytest.mark.parametrize("aql", AQL_SERIES)
def test_acceptance_grows_with_the_sample_in_each_column(aql):
    plans = [plan_for_letter(letter, aql) for letter in LETTERS]
    assert [p[1] for p in plans] == sorted(p[1] for p in plans)
    assert [p[2] for p in plans] == sorted(p[2] for p in plans)


def test_code_letters_grow_with_lot_size_and_level():
    sizes = [2, 9, 16, 26, 51, 91, 151, 281, 501, 1201, 3201, 10001, 35001, 150001, 500001]
    for level in LEVELS:
        letters = [LETTERS.index(code_letter(size, level)) for size in sizes]
        assert letters == sorted(letters)
    for size in sizes:
        assert [code_letter(size, level) for level in LEVELS] == \
            sorted(code_letter(size, level) for level in LEVELS)


def test_aql_spelling_and_refusals():
    assert aql_key(Decimal("1")) == "1.0" and aql_key("0.1") == "0.10" and aql_key("10.0") == "10"
    with pytest.raises(ValueError):
        aql_key("1.2")
    with pytest.raises(ValueError):
        code_letter(100, "IV")
    with pytest.raises(ValueError):
        code_letter(0, "II")
