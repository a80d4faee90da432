"""Lot and batch numbers from the configurable rules of config/numbering.toml.

A rule is a pattern of literal text and placeholders: ``{material}``, ``{supplier}``,
``{line}``, ``{yyyy}``, ``{yy}``, ``{mm}``, ``{dd}`` and exactly one ``{seq}`` or
``{seq:NN}`` (zero-padded to NN digits). The counter key is the pattern rendered with every
placeholder except the sequence, so a rule with the day in it restarts every day and one with
the material counts per material. Counters live in ``number_sequences`` and are incremented
inside the creating transaction, so a refused creation gives its number back.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from qms.errors import InvalidInput
from qms.materials.models import NumberSequence
from qms.settings import ConfigError, load_toml

MAX_LENGTH = 40  # VersionedRecord.number
# no "/" (a number is a URL path segment) and no spaces; the same set for values put in
NUMBER_TEXT = re.compile(r"^[A-Za-z0-9._-]+$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SEQ = re.compile(r"^seq(?::([0-9]{1,2}))?$")
MAX_SEQ_WIDTH = 12
DATE_PARTS = {"yyyy": lambda d: f"{d.year:04d}", "yy": lambda d: f"{d.year % 100:02d}",
              "mm": lambda d: f"{d.month:02d}", "dd": lambda d: f"{d.day:02d}"}
# the value placeholders each rule may use (a batch has no supplier, a receipt no line)
VALUES = {"lot": ("material", "supplier"), "batch": ("material", "line")}
SEQ_MARK = "{seq}"  # the sequence, left in the counter key (values never hold braces)


@dataclass(frozen=True)
class NumberRule:
    """One rule: ``name`` (lot, batch) and its pattern split into literal text and
    placeholders."""

    name: str
    pattern: str
    parts: tuple[tuple[str, str], ...]  # ("text", "-") or ("field", "material")
    seq_width: int

    def counter_key(self, values: Mapping[str, str], on: date) -> str:
        """The pattern rendered with everything but the sequence (``{seq}`` left in)."""
        rendered = []
        for kind, value in self.parts:
            if kind == "text":
                rendered.append(value)
            elif value == "seq":
                rendered.append(SEQ_MARK)
            elif value in DATE_PARTS:
                rendered.append(DATE_PARTS[value](on))
            else:
                rendered.append(_checked_value(value, values.get(value, "")))
        return f"{self.name}:" + "".join(rendered)

    def number(self, key: str, seq: int) -> str:
        return key.split(":", 1)[1].replace(SEQ_MARK, f"{seq:0{self.seq_width}d}")


@dataclass(frozen=True)
class NumberingRules:
    lot: NumberRule
    batch: NumberRule


def _checked_value(name: str, value: str) -> str:
    """A value put into a number must keep the number a safe, readable path segment."""
    if not value or not NUMBER_TEXT.match(value):
        raise InvalidInput(f"{name} {value!r} cannot be part of a number: use letters, digits, "
                           "'.', '_' and '-'", field=name)
    return value


def parse_rule(name: str, pattern: Any) -> NumberRule:
    """Check and split one pattern; ConfigError naming the rule and the problem."""
    where = f"numbering.toml [{name}] pattern"
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where} must be a non-empty string")
    parts: list[tuple[str, str]] = []
    widths, position = [], 0
    for match in PLACEHOLDER.finditer(pattern):
        parts.append(("text", pattern[position:match.start()]))
        placeholder, position = match.group(1), match.end()
        seq = SEQ.match(placeholder)
        if seq:
            widths.append(int(seq.group(1) or 1))
            if not 1 <= widths[-1] <= MAX_SEQ_WIDTH:
                raise ConfigError(f"{where}: {{{placeholder}}} needs a width from 1 to "
                                  f"{MAX_SEQ_WIDTH}")
            placeholder = "seq"
        elif placeholder not in DATE_PARTS and placeholder not in VALUES[name]:
            allowed = ", ".join(f"{{{p}}}" for p in (*VALUES[name], *DATE_PARTS, "seq:NN"))
            raise ConfigError(f"{where}: unknown placeholder {{{placeholder}}}; "
                              f"allowed: {allowed}")
        parts.append(("field", placeholder))
    parts.append(("text", pattern[position:]))
    literal = "".join(text for kind, text in parts if kind == "text")
    if "{" in literal or "}" in literal:
        raise ConfigError(f"{where}: unbalanced brace in {pattern!r}")
    if len(widths) != 1:
        raise ConfigError(f"{where} must contain {{seq}} or {{seq:NN}} exactly once")
    if literal and not NUMBER_TEXT.match(literal):
        raise ConfigError(f"{where}: literal text may use only letters, digits, '.', '_' "
                          f"and '-' (no '/' or spaces: a number is a URL path segment)")
    rule = NumberRule(name, pattern, tuple(p for p in parts if p != ("text", "")), widths[0])
    _check_length(rule, where)
    return rule


def _check_length(rule: NumberRule, where: str) -> None:
    """The shortest possible number (one-character values) must fit, else no number ever
    does; longer values are checked when a number is made."""
    example = rule.number(rule.counter_key({v: "X" for v in VALUES[rule.name]},
                                           date(2000, 1, 1)), 1)
    if len(example) > MAX_LENGTH:
        raise ConfigError(f"{where}: numbers would be longer than {MAX_LENGTH} characters "
                          f"(e.g. {example!r})")


def load_numbering(path: Path) -> NumberingRules:
    """Read and check config/numbering.toml; the application refuses to start otherwise."""
    document = load_toml(path)
    unknown = set(document) - {"lot", "batch"}
    if unknown:
        raise ConfigError(f"numbering.toml: unknown section(s) {', '.join(sorted(unknown))}")
    rules = {}
    for name in ("lot", "batch"):
        table = document.get(name)
        if not isinstance(table, dict) or set(table) != {"pattern"}:
            raise ConfigError(f"numbering.toml needs a [{name}] table with only a pattern")
        rules[name] = parse_rule(name, table["pattern"])
    return NumberingRules(**rules)


def next_number(session: Session, rule: NumberRule, values: Mapping[str, str], on: date,
                *, taken: Any = None) -> str:
    """The next number of ``rule`` for these values and date, counted in the caller's
    transaction (the upsert locks the counter row on PostgreSQL; SQLite writers hold the
    database). ``taken(number)`` -> bool skips a number another rule already issued.
    InvalidInput (naming the value) when the number would not fit. Executes, never commits."""
    key = rule.counter_key(values, on)
    while True:
        number = rule.number(key, _increment(session, key))
        if len(number) > MAX_LENGTH:
            field = next((v for v in VALUES[rule.name] if values.get(v)), "number")
            raise InvalidInput(f"the {rule.name} number {number!r} would be longer than "
                               f"{MAX_LENGTH} characters; shorten the {field}", field=field)
        if taken is None or not taken(number):
            return number


def _increment(session: Session, key: str) -> int:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = NumberSequence.__table__
    statement = (dialect.insert(table).values(key=key, last_value=1)
                 .on_conflict_do_update(index_elements=[table.c.key],
                                        set_={"last_value": table.c.last_value + 1})
                 .returning(table.c.last_value))
    return session.execute(statement).scalar_one()
