"""The shipped URS is complete and names only tests that exist; a faulty URS is refused."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from validation.requirements import (RISKS, RequirementsError, load_specification,
                                     parse_specification, pattern_matches, unmatched_patterns)

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_urs_is_valid():
    specification = load_specification()
    assert 30 <= len(specification.requirements) <= 90
    for area in specification.areas:
        assert specification.in_area(area), f"area {area} has no requirement"
    assert {r.risk for r in specification.requirements} == set(RISKS)
    for requirement in specification.requirements:
        assert any(clause.startswith(("21 CFR 11.", "EU Annex 11 §"))
                   for clause in requirement.regulation), requirement.id


def collected_node_ids() -> tuple[list[str], str]:
    """Node ids of the whole suite, collected (not run) in a subprocess; SQLite ids only,
    which is enough because a URS node id names a test regardless of its backend."""
    environment = {k: v for k, v in os.environ.items() if k != "QMS_TEST_POSTGRES_URL"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "--continue-on-collection-errors"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    node_ids = [line.strip() for line in lines if "::" in line]
    summary = [line for line in lines if "::" not in line]  # counts and collection errors
    return node_ids, "\n".join(summary[-20:]) + done.stderr[-2000:]


def test_every_urs_test_exists_in_the_suite():
    node_ids, output = collected_node_ids()
    assert len(node_ids) > 100, output
    unmatched = unmatched_patterns(load_specification(), node_ids)
    assert unmatched == [], f"URS tests that do not exist: {unmatched}\n{output}"


@pytest.mark.parametrize("pattern, node_id, matches", [
    ("tests/a.py::test_x", "tests/a.py::test_x", True),
    ("tests/a.py::test_x", "tests/a.py::test_x[sqlite]", True),
    ("tests/a.py::test_x", "tests/a.py::test_x_more[sqlite]", False),
    ("tests/a.py::test_x[postgresql", "tests/a.py::test_x[postgresql-de]", True),
    ("tests/a.py::test_x[postgresql", "tests/a.py::test_x[sqlite-de]", False),
    ("tests/a.py::test_x", "tests/b/a.py::test_x", False),
])
def test_parametrised_ids_match_by_prefix(pattern, node_id, matches):
    assert pattern_matches(pattern, node_id) is matches


VALID = {
    "specification": {"title": "Site URS", "version": "1"},
    "areas": {"AUD": "Audit trail"},
    "requirements": [{"id": "URS-AUD-001", "statement": "Changes are audited.",
                      "regulation": ["21 CFR 11.10(e)"], "risk": "high",
                      "tests": ["tests/a.py::test_x"]}],
}


def _without(field):
    def edit(document):
        del document["requirements"][0][field]
    return edit


def _set(field, value):
    def edit(document):
        document["requirements"][0][field] = value
    return edit


def _duplicate(document):
    document["requirements"].append(copy.deepcopy(document["requirements"][0]))


@pytest.mark.parametrize("edit, message", [
    (_without("statement"), r"missing fields \['statement'\]"),
    (_without("tests"), r"missing fields \['tests'\]"),
    (_set("owner", "qa"), r"unknown fields \['owner'\]"),
    (_set("id", "URS-XYZ-001"), "declared area"),
    (_set("id", "AUD-1"), "URS-<area>-<nnn>"),
    (_set("risk", "critical"), "risk must be one of high, medium, low"),
    (_set("regulation", []), "regulation must be a non-empty list"),
    (_set("tests", ["test_x"]), "is not a pytest node id"),
    (_set("statement", "  "), "statement must be a non-empty string"),
    (_duplicate, "URS-AUD-001 is defined twice"),
    (lambda d: d.pop("areas"), r"missing \[areas\]"),
])
def test_invalid_urs_is_refused_naming_the_problem(edit, message):
    document = copy.deepcopy(VALID)
    parse_specification(document)
    edit(document)
    with pytest.raises(RequirementsError, match=message):
        parse_specification(document)


def test_unreadable_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "site-urs.toml"
    path.write_text("[specification\n")
    with pytest.raises(RequirementsError, match="site-urs.toml"):
        load_specification(path)
