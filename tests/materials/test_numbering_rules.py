"""Lot and batch number rules: the pattern parser and renderer without a database, the
counters per key in the database, and gapless numbers after a refused receipt."""
from __future__ import annotations

from datetime import date

import pytest

from qms.errors import Conflict, InvalidInput
from qms.materials import hooks
from qms.materials.numbering import load_numbering, parse_rule
from qms.settings import ConfigError, config_dir

DAY = date(2026, 3, 7)


def _number(rule, values, seq=1, on=DAY):
    return rule.number(rule.counter_key(values, on), seq)


def test_placeholders_render_with_zero_padded_sequence():
    lot = parse_rule("lot", "{material}-{yy}{mm}{dd}-{seq:03}")
    assert _number(lot, {"material": "RM-API", "supplier": "ACME"}) == "RM-API-260307-001"
    assert _number(lot, {"material": "RM-API"}, seq=1234) == "RM-API-260307-1234"
    batch = parse_rule("batch", "B{yyyy}{mm}-{line}-{seq:04}")
    assert _number(batch, {"material": "FG", "line": "L2"}, seq=7) == "B202603-L2-0007"
    assert _number(parse_rule("lot", "{supplier}.{seq}"), {"supplier": "S_1"}, 12) == "S_1.12"


def test_the_counter_key_is_the_pattern_without_the_sequence():
    rule = parse_rule("lot", "{material}-{yy}{mm}{dd}-{seq:03}")
    assert rule.counter_key({"material": "RM"}, DAY) == "lot:RM-260307-{seq}"
    # per material and per day; a rule without the date counts across days
    assert rule.counter_key({"material": "RM"}, date(2026, 3, 8)) != \
        rule.counter_key({"material": "RM"}, DAY)
    yearly = parse_rule("lot", "L{yyyy}-{seq:06}")
    assert yearly.counter_key({"material": "A"}, DAY) == \
        yearly.counter_key({"material": "B"}, date(2026, 12, 31))


@pytest.mark.parametrize("pattern, problem", [
    ("{material}-{colour}-{seq}", "unknown placeholder {colour}"),
    ("{material}-{line}-{seq}", "unknown placeholder {line}"),  # a receipt has no line
    ("{material}-{yyyy}", "exactly once"),
    ("{seq}-{seq:02}", "exactly once"),
    ("{seq:0}", "width from 1 to 12"),
    ("{seq:99}", "width from 1 to 12"),
    ("LOT/{seq}", "no '/'"),
    ("LOT {seq}", "no '/' or spaces"),
    ("{material-{seq}", "unbalanced brace"),
    ("LOT}{seq}", "unbalanced brace"),
    ("X" * 38 + "{yyyy}{seq}", "longer than 40"),
    ("", "non-empty string"),
    (17, "non-empty string"),
])
def test_bad_patterns_are_refused_naming_the_problem(pattern, problem):
    with pytest.raises(ConfigError, match="numbering.toml \\[lot\\] pattern") as error:
        parse_rule("lot", pattern)
    assert problem in str(error.value)


def test_a_batch_rule_cannot_use_the_supplier():
    with pytest.raises(ConfigError, match="unknown placeholder {supplier}"):
        parse_rule("batch", "{supplier}-{seq}")


@pytest.mark.parametrize("value", ["L 1", "L/1", "", "Ł1", "a{seq}"])
def test_values_that_would_corrupt_a_number_are_refused(value):
    rule = parse_rule("batch", "B-{line}-{seq}")
    with pytest.raises(InvalidInput) as error:
        rule.counter_key({"material": "FG", "line": value}, DAY)
    assert "line" in error.value.errors


def test_the_bundled_rules_load(tmp_path):
    rules = load_numbering(config_dir() / "numbering.toml")
    assert rules.lot.seq_width == 3 and rules.batch.seq_width == 4
    bad = tmp_path / "numbering.toml"
    bad.write_text('[lot]\npattern = "{seq}"\n')
    with pytest.raises(ConfigError, match=r"\[batch\] table"):
        load_numbering(bad)
    bad.write_text('[lot]\npattern = "{seq}"\n[batch]\npattern = "{seq}"\n[pallet]\n')
    with pytest.raises(ConfigError, match="unknown section"):
        load_numbering(bad)


def test_counters_run_per_key(basics):
    m = basics
    m.material("RM-EXC")
    numbers = [m.received(material, release=False)
               for material in ("RM-API", "RM-EXC", "RM-API", "RM-EXC", "RM-API")]
    suffixes = [(n.rsplit("-", 2)[0], n[-3:]) for n in numbers]
    assert suffixes == [("RM-API", "001"), ("RM-EXC", "001"), ("RM-API", "002"),
                        ("RM-EXC", "002"), ("RM-API", "003")]


def test_a_refused_receipt_gives_its_number_back(basics, monkeypatch, db_snapshot):
    m = basics
    first = m.received(release=False)

    def refuse(session, lot, actor):
        raise Conflict(f"refused {lot.number} after it was numbered")
    monkeypatch.setattr(hooks, "on_lot_received", [refuse])
    before = db_snapshot()
    refused = m.receive()
    assert refused.status_code == 409 and first[:-3] + "002" in refused.get_json()["detail"]
    assert db_snapshot() == before
    monkeypatch.setattr(hooks, "on_lot_received", [])
    assert m.received(release=False) == first[:-3] + "002"


def test_a_code_that_makes_the_number_too_long_is_refused(basics, db_snapshot):
    m = basics
    code = "RM-" + "X" * 30
    m.material(code)
    before = db_snapshot()
    response = m.receive(code)
    assert response.status_code == 422
    assert "longer than 40" in response.get_json()["errors"]["material"][0]
    assert db_snapshot() == before
