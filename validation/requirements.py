"""The user requirements specification (URS): loading and checking ``urs.toml``.

Each requirement has a stable ID ``URS-<AREA>-<nnn>``, a statement, the regulation clauses it
serves, a risk, and the tests that verify it, named as pytest node ids. A node id without
parameters covers every parametrisation of that test (``...::test_x`` matches
``...::test_x[sqlite]``); one with an opening bracket matches by prefix
(``...::test_x[postgresql`` matches only the PostgreSQL runs).
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RISKS = ("high", "medium", "low")
REQUIREMENT_FIELDS = ("id", "statement", "regulation", "risk", "tests")
_ID = re.compile(r"^URS-([A-Z]{2,4})-(\d{3})$")
_AREA = re.compile(r"^[A-Z]{2,4}$")
_NODE_ID = re.compile(r"^[\w./-]+\.py::\S+$")


class RequirementsError(ValueError):
    """The URS file is invalid; the message names the file and the requirement."""


@dataclass(frozen=True)
class Requirement:
    id: str
    area: str
    statement: str
    regulation: tuple[str, ...]
    risk: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Specification:
    title: str
    version: str
    areas: Mapping[str, str]
    requirements: tuple[Requirement, ...]

    def in_area(self, area: str) -> list[Requirement]:
        return [r for r in self.requirements if r.area == area]


def shipped_urs_path() -> Path:
    """The URS shipped inside the package (package data, so a wheel carries it)."""
    # beside this module rather than importlib.resources.files(): an editable install made
    # before validation/ had its __init__.py maps it as a namespace package, which files()
    # cannot read
    return Path(__file__).with_name("urs.toml")


def load_specification(path: Path | None = None) -> Specification:
    """Read and check a URS file (default: the shipped one). Raises RequirementsError."""
    path = path or shipped_urs_path()
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RequirementsError(f"{path}: {error}") from None
    return parse_specification(document, source=str(path))


def parse_specification(document: Mapping[str, Any], *, source: str = "urs") -> Specification:
    """Build a Specification from a parsed TOML document, refusing anything incomplete:
    every field present and typed, IDs unique and of a declared area, risks known."""
    header = _table(document, "specification", source)
    areas = _areas(_table(document, "areas", source), source)
    entries = document.get("requirements")
    if not isinstance(entries, list) or not entries:
        raise RequirementsError(f"{source}: expected [[requirements]] entries")
    requirements = tuple(_requirement(f"{source}: requirements[{index}]", entry, areas)
                         for index, entry in enumerate(entries))
    _check_unique(source, requirements)
    return Specification(_text(source, "specification.title", header.get("title")),
                         _text(source, "specification.version", header.get("version")),
                         areas, requirements)


def _table(document: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    table = document.get(name)
    if not isinstance(table, dict):
        raise RequirementsError(f"{source}: missing [{name}] table")
    return table


def _areas(table: Mapping[str, Any], source: str) -> dict[str, str]:
    for code, name in table.items():
        if not _AREA.match(code):
            raise RequirementsError(f"{source}: area code {code!r} must be 2-4 capital letters")
        _text(source, f"areas.{code}", name)
    return dict(table)


def _requirement(where: str, entry: Any, areas: Mapping[str, str]) -> Requirement:
    if not isinstance(entry, dict):
        raise RequirementsError(f"{where}: must be a table")
    where = f"{where} ({entry.get('id', 'no id')})"
    missing = [name for name in REQUIREMENT_FIELDS if name not in entry]
    unknown = sorted(set(entry) - set(REQUIREMENT_FIELDS))
    if missing or unknown:
        raise RequirementsError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    match = _ID.match(entry["id"]) if isinstance(entry["id"], str) else None
    if match is None or match.group(1) not in areas:
        raise RequirementsError(f"{where}: id must be URS-<area>-<nnn> with a declared area "
                                f"({', '.join(areas)})")
    if entry["risk"] not in RISKS:
        raise RequirementsError(f"{where}: risk must be one of {', '.join(RISKS)}")
    tests = _texts(where, "tests", entry["tests"])
    for pattern in tests:
        if not _NODE_ID.match(pattern):
            raise RequirementsError(f"{where}: {pattern!r} is not a pytest node id "
                                    "(path/to/test_file.py::test_name)")
    return Requirement(entry["id"], match.group(1), _text(where, "statement", entry["statement"]),
                       _texts(where, "regulation", entry["regulation"]), entry["risk"], tests)


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RequirementsError(f"{where}: {name} must be a non-empty string")
    return value.strip()


def _texts(where: str, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RequirementsError(f"{where}: {name} must be a non-empty list of strings")
    texts = tuple(_text(where, name, item) for item in value)
    if len(set(texts)) != len(texts):
        raise RequirementsError(f"{where}: {name} lists an entry twice")
    return texts


def _check_unique(source: str, requirements: Iterable[Requirement]) -> None:
    seen: set[str] = set()
    for requirement in requirements:
        if requirement.id in seen:
            raise RequirementsError(f"{source}: requirement {requirement.id} is defined twice")
        seen.add(requirement.id)


def pattern_matches(pattern: str, node_id: str) -> bool:
    """True when the URS test ``pattern`` names the test ``node_id`` (see module doc)."""
    if node_id == pattern:
        return True
    if "[" in pattern:
        return node_id.startswith(pattern)
    return node_id.startswith(pattern + "[")


def unmatched_patterns(specification: Specification,
                       node_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(requirement id, pattern) for every URS test pattern that names none of ``node_ids``."""
    node_ids = list(node_ids)
    return [(requirement.id, pattern)
            for requirement in specification.requirements for pattern in requirement.tests
            if not any(pattern_matches(pattern, node_id) for node_id in node_ids)]
