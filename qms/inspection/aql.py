"""AQL sampling by MIL-STD-105E (public; the same tables as ISO 2859-1 and ANSI/ASQ Z1.4):
general inspection levels I, II and III, normal inspection, single sampling.

Pure functions over the two tables, encoded as data:

- Table I, sample size code letters by lot size and inspection level;
- Table II-A, the single sampling plans for normal inspection: per code letter the sample
  size, and per AQL either an acceptance / rejection number pair (Ac, Re) or an arrow: use
  the first plan below (``DOWN``) or above (``UP``) it in the same AQL column, which changes
  the sample size.

Table II-A has a regular structure that the rows below spell out: along each row the plans
run ``0 1, UP, DOWN, 1 2, 2 3, 3 4, 5 6, 7 8, 10 11, 14 15, 21 22`` (rows A-E continue with
``30 31, 44 45``, the larger plans for nonconformities per hundred units), with DOWN before
and UP after. Two cells where the printed arrow would lead off the table are read the only
way that has a plan: A at AQL 10 as DOWN (to C, 1 2) and R at AQL 0.015 as UP (to P, 0 1).
When the sample size reaches the lot size, every unit is inspected (100 %).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

LEVELS = ("I", "II", "III")

# the standard's AQL series, in percent nonconforming / nonconformities per 100 units
AQL_SERIES = ("0.010", "0.015", "0.025", "0.040", "0.065", "0.10", "0.15", "0.25", "0.40",
              "0.65", "1.0", "1.5", "2.5", "4.0", "6.5", "10", "15", "25", "40", "65", "100",
              "150", "250", "400", "650", "1000")

# Table I: (largest lot size of the range, code letter at level I, II, III)
_CODE_LETTERS = (
    (8, "A", "A", "B"), (15, "A", "B", "C"), (25, "B", "C", "D"), (50, "C", "D", "E"),
    (90, "C", "E", "F"), (150, "D", "F", "G"), (280, "E", "G", "H"), (500, "F", "H", "J"),
    (1200, "G", "J", "K"), (3200, "H", "K", "L"), (10000, "J", "L", "M"),
    (35000, "K", "M", "N"), (150000, "L", "N", "P"), (500000, "M", "P", "Q"),
    (None, "N", "Q", "R"),  # 500,001 and over
)

# Table II-A, sample size per code letter
SAMPLE_SIZES = {"A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50,
                "J": 80, "K": 125, "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250,
                "R": 2000}
LETTERS = tuple(SAMPLE_SIZES)

UP, DOWN = "up", "down"
Cell = tuple[int, int] | str

# Table II-A, one row per code letter, one cell per AQL of AQL_SERIES (0.010 ... 1000)
_D, _U = DOWN, UP
_PLANS: dict[str, tuple[Cell, ...]] = {
    #      0.010    0.015    0.025    0.040    0.065    0.10     0.15     0.25     0.40
    #      0.65     1.0      1.5      2.5      4.0      6.5      10       15       25
    #      40       65       100      150      250      400      650      1000
    "A": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          _D, _D, _D, _D, _D, (0, 1), _D, _D, (1, 2),
          (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), (30, 31)),
    "B": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          _D, _D, _D, _D, (0, 1), _U, _D, (1, 2), (2, 3),
          (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), (30, 31), (44, 45)),
    "C": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          _D, _D, _D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4),
          (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), (30, 31), (44, 45), _U),
    "D": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          _D, _D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6),
          (7, 8), (10, 11), (14, 15), (21, 22), (30, 31), (44, 45), _U, _U),
    "E": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          _D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8),
          (10, 11), (14, 15), (21, 22), (30, 31), (44, 45), _U, _U, _U),
    "F": (_D, _D, _D, _D, _D, _D, _D, _D, _D,
          (0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11),
          (14, 15), (21, 22), _U, _U, _U, _U, _U, _U),
    "G": (_D, _D, _D, _D, _D, _D, _D, _D, (0, 1),
          _U, _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15),
          (21, 22), _U, _U, _U, _U, _U, _U, _U),
    "H": (_D, _D, _D, _D, _D, _D, _D, (0, 1), _U,
          _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22),
          _U, _U, _U, _U, _U, _U, _U, _U),
    "J": (_D, _D, _D, _D, _D, _D, (0, 1), _U, _D,
          (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "K": (_D, _D, _D, _D, _D, (0, 1), _U, _D, (1, 2),
          (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "L": (_D, _D, _D, _D, (0, 1), _U, _D, (1, 2), (2, 3),
          (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "M": (_D, _D, _D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4),
          (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), _U, _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "N": (_D, _D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6),
          (7, 8), (10, 11), (14, 15), (21, 22), _U, _U, _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "P": (_D, (0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8),
          (10, 11), (14, 15), (21, 22), _U, _U, _U, _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "Q": ((0, 1), _U, _D, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11),
          (14, 15), (21, 22), _U, _U, _U, _U, _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
    "R": (_U, _U, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15),
          (21, 22), _U, _U, _U, _U, _U, _U, _U, _U,
          _U, _U, _U, _U, _U, _U, _U, _U),
}


@dataclass(frozen=True)
class SamplingPlan:
    """What to inspect and when to accept: ``sample_size`` units (the whole lot when
    ``full_inspection``), accept with at most ``accept`` nonconforming, reject with
    ``reject`` or more. ``code_letter`` is the letter of Table I for the lot;
    ``plan_letter`` the row the arrows led to, whose sample size applies."""

    code_letter: str
    plan_letter: str
    sample_size: int
    accept: int
    reject: int
    full_inspection: bool = False


def aql_key(aql: Decimal | str) -> str:
    """The AQL as the standard spells it (``Decimal("1")`` -> ``"1.0"``); ValueError when
    it is not one of the series."""
    value = Decimal(str(aql))
    for spelled in AQL_SERIES:
        if Decimal(spelled) == value:
            return spelled
    raise ValueError(f"AQL {aql} is not one of the standard series {', '.join(AQL_SERIES)}")


def code_letter(lot_size: int, level: str) -> str:
    """Table I: the sample size code letter for a lot of ``lot_size`` units (a lot of one
    unit reads the first row)."""
    if level not in LEVELS:
        raise ValueError(f"inspection level must be one of {', '.join(LEVELS)}")
    if lot_size < 1:
        raise ValueError("a lot has at least one unit")
    column = LEVELS.index(level) + 1
    for row in _CODE_LETTERS:
        if row[0] is None or lot_size <= row[0]:
            return row[column]
    raise AssertionError("Table I ends with an open range")


def plan_for_letter(letter: str, aql: Decimal | str) -> tuple[str, int, int, int]:
    """Table II-A with its arrows followed: (plan letter, sample size, Ac, Re)."""
    column = AQL_SERIES.index(aql_key(aql))
    index = LETTERS.index(letter)
    while True:
        cell = _PLANS[LETTERS[index]][column]
        if isinstance(cell, tuple):
            plan_letter = LETTERS[index]
            return plan_letter, SAMPLE_SIZES[plan_letter], cell[0], cell[1]
        index += 1 if cell == DOWN else -1


def sampling_plan(lot_size: int, level: str, aql: Decimal | str) -> SamplingPlan:
    """The single sampling plan for normal inspection of a lot: Table I gives the code
    letter, Table II-A (arrows followed) the sample size and Ac/Re; a sample size that
    reaches the lot size means inspecting every unit."""
    letter = code_letter(lot_size, level)
    plan_letter, size, accept, reject = plan_for_letter(letter, aql)
    if size >= lot_size:
        return SamplingPlan(letter, plan_letter, lot_size, accept, reject, True)
    return SamplingPlan(letter, plan_letter, size, accept, reject)
