"""Rules of inspection plans and results that need no database: what a plan's content must
satisfy, how characteristics are written down, and whether a value conforms.

A characteristic, as stored in a plan (and copied into each inspection it opens):

- numeric: ``{"code", "name", "type": "numeric", "unit", "lsl", "usl", "target",
  "decimals"}`` with the limits as exact decimal strings (or null; at least one of LSL and
  USL), LSL <= target <= USL, and no limit carrying more decimal places than ``decimals``
  (0-6), the resolution results are recorded at;
- attribute: ``{"code", "name", "type": "attribute"}``, judged pass / fail.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from qms.inspection.aql import AQL_SERIES, LEVELS, aql_key
from qms.inspection.models import STAGES, Stage

NUMERIC, ATTRIBUTE = "numeric", "attribute"
CHARACTERISTIC_TYPES = (NUMERIC, ATTRIBUTE)
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
CODE_RULE = "1 to 40 of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit"
MAX_DECIMALS = 6
MAX_CHARACTERISTICS = 100
MAX_SAMPLE_SIZE = 10000


def characteristic_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A characteristic as loaded by the API (limits as Decimals) in its stored form:
    the keys of its type only, decimals as their exact strings."""
    base = {"code": fields["code"], "name": fields["name"].strip(), "type": fields["type"]}
    if fields["type"] != NUMERIC:
        return base
    return {**base, "unit": fields.get("unit"), "lsl": _text(fields.get("lsl")),
            "usl": _text(fields.get("usl")), "target": _text(fields.get("target")),
            "decimals": fields.get("decimals")}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def plan_problems(content: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every rule a version of an inspection plan keeps, whatever path wrote it: field ->
    problems, characteristics named by position (``characteristics.0.lsl``)."""
    problems: dict[str, list[str]] = {}
    if not (content.get("title") or "").strip():
        problems["title"] = ["a plan needs a title"]
    stage = content.get("stage")
    if stage not in STAGES:
        problems["stage"] = [f"one of {', '.join(STAGES)}"]
    operation = content.get("operation")
    if stage == Stage.IN_PROCESS.value and not (operation or "").strip():
        problems["operation"] = ["an in-process plan names its operation"]
    if stage in (Stage.INCOMING.value, Stage.FINAL.value) and operation is not None:
        problems["operation"] = [f"only in-process plans name an operation, not {stage}"]
    problems.update(sampling_problems(content))
    problems.update(characteristics_problems(content.get("characteristics")))
    return problems


def sampling_problems(content: Mapping[str, Any]) -> dict[str, list[str]]:
    """A fixed sample size, or an AQL plan (inspection level and AQL): exactly one."""
    size, level, aql = (content.get("sample_size"), content.get("inspection_level"),
                        content.get("aql"))
    if size is None and aql is None and level is None:
        return {"sample_size": ["give a fixed sample_size, or inspection_level and aql"]}
    if size is not None and (aql is not None or level is not None):
        return {"sample_size": ["a fixed sample_size or an AQL plan, not both"]}
    if size is not None:
        if not isinstance(size, int) or not 1 <= size <= MAX_SAMPLE_SIZE:
            return {"sample_size": [f"1 to {MAX_SAMPLE_SIZE} units"]}
        return {}
    problems: dict[str, list[str]] = {}
    if level not in LEVELS:
        problems["inspection_level"] = [f"one of {', '.join(LEVELS)} with an AQL"]
    try:
        aql_key(aql)
    except (ValueError, InvalidOperation, TypeError):
        problems["aql"] = [f"one of the standard AQL series: {', '.join(AQL_SERIES)}"]
    return problems


def characteristics_problems(characteristics: Any) -> dict[str, list[str]]:
    if not isinstance(characteristics, list) or not characteristics:
        return {"characteristics": ["a plan needs at least one characteristic"]}
    if len(characteristics) > MAX_CHARACTERISTICS:
        return {"characteristics": [f"at most {MAX_CHARACTERISTICS} characteristics"]}
    problems: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, characteristic in enumerate(characteristics):
        where = f"characteristics.{index}"
        if not isinstance(characteristic, dict):
            problems[where] = ["must be an object"]
            continue
        code = characteristic.get("code")
        if isinstance(code, str) and code in seen:
            problems[f"{where}.code"] = [f"code {code!r} is used twice in this plan"]
        seen.add(code)
        for field, messages in characteristic_problems(characteristic).items():
            problems.setdefault(f"{where}.{field}", []).extend(messages)
    return problems


def characteristic_problems(characteristic: Mapping[str, Any]) -> dict[str, list[str]]:
    """Problems of one stored characteristic, by its own field names."""
    problems: dict[str, list[str]] = {}
    code = characteristic.get("code")
    if not isinstance(code, str) or not CODE.match(code):
        problems["code"] = [CODE_RULE]
    if not (characteristic.get("name") or "").strip():
        problems["name"] = ["a characteristic needs a name"]
    kind = characteristic.get("type")
    if kind not in CHARACTERISTIC_TYPES:
        problems["type"] = [f"one of {', '.join(CHARACTERISTIC_TYPES)}"]
    elif kind == NUMERIC:
        problems.update(_numeric_problems(characteristic))
    return problems


def _numeric_problems(characteristic: Mapping[str, Any]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not (characteristic.get("unit") or "").strip():
        problems["unit"] = ["a numeric characteristic has a unit"]
    decimals = characteristic.get("decimals")
    if isinstance(decimals, bool) or not isinstance(decimals, int) \
            or not 0 <= decimals <= MAX_DECIMALS:
        problems["decimals"] = [f"0 to {MAX_DECIMALS} decimal places"]
        decimals = MAX_DECIMALS
    limits = {}
    for name in ("lsl", "usl", "target"):
        value = characteristic.get(name)
        if value is None:
            continue
        number = _decimal(value)
        if number is None:
            problems[name] = ["an exact decimal string such as \"12.30\""]
        elif places(number) > decimals:
            problems[name] = [f"{value} has more decimal places than decimals ({decimals})"]
        else:
            limits[name] = number
    if characteristic.get("lsl") is None and characteristic.get("usl") is None:
        problems["lsl"] = ["give lsl, usl or both"]
    problems.update(_limit_order_problems(limits))
    return problems


def _limit_order_problems(limits: Mapping[str, Decimal]) -> dict[str, list[str]]:
    lsl, usl, target = limits.get("lsl"), limits.get("usl"), limits.get("target")
    if lsl is not None and usl is not None and lsl > usl:
        return {"lsl": [f"LSL {lsl} is above USL {usl}"]}
    if target is not None and ((lsl is not None and target < lsl)
                               or (usl is not None and target > usl)):
        return {"target": [f"target {target} is outside the limits"]}
    return {}


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def places(number: Decimal) -> int:
    """Decimal places as written: ``Decimal("12.30")`` has 2."""
    return max(0, -number.as_tuple().exponent)


def conforms(characteristic: Mapping[str, Any], value: Decimal | None,
             passed: bool | None) -> bool:
    """Whether a result conforms: LSL <= value <= USL for a numeric characteristic (a
    missing limit does not bound), the pass verdict for an attribute."""
    if characteristic["type"] == ATTRIBUTE:
        return bool(passed)
    lsl, usl = characteristic.get("lsl"), characteristic.get("usl")
    return (lsl is None or value >= Decimal(lsl)) and (usl is None or value <= Decimal(usl))


def lot_size_of(quantity: Decimal) -> int:
    """Sampling units in a lot when none are given: the quantity rounded up (a lot of
    250.5 kg is 251 units of 1 kg; a lot of 1,000 pcs is 1,000 units)."""
    units = int(quantity.to_integral_value(rounding="ROUND_CEILING"))
    return max(units, 1)
