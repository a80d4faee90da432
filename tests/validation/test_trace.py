"""The traceability matrix from a small handmade URS and JUnit XML: verdicts, missing tests,
backends, and the text, JSON and HTML reports."""
from __future__ import annotations

import json

import pytest

from validation.junit import JUnitError, read_junit, result_key
from validation.requirements import parse_specification
from validation.trace import (A_TEST_FAILED, NOT_RUN, NOT_VERIFIED, VERIFIED, build_matrix,
                              matrix_html, matrix_json, matrix_text)

MODULE = "tests.area.test_things"
PATH = "tests/area/test_things.py"

# requirement id -> the tests it lists
TRACES = {
    "URS-AUD-001": ["test_passes"],
    "URS-AUD-002": ["test_passes", "test_fails"],
    "URS-AUD-003": ["test_is_skipped"],
    "URS-AUD-004": ["test_was_removed"],
    "URS-AUD-005": ["test_passes", "test_was_removed"],
    "URS-AUD-006": ["test_errors_in_setup"],
    "URS-AUD-007": ["test_backend_specific[postgresql"],
    "URS-AUD-008": ["test_backend_specific[sqlite"],
    "URS-AUD-009": ["TestInClass::test_method"],
}
RESULTS = [
    (MODULE, "test_passes[sqlite]", "passed"), (MODULE, "test_passes[postgresql]", "passed"),
    (MODULE, "test_passes_too", "failed"),  # a longer name must not match test_passes
    (MODULE, "test_fails[sqlite]", "passed"), (MODULE, "test_fails[postgresql]", "failed"),
    (MODULE, "test_is_skipped", "skipped"),
    (MODULE, "test_errors_in_setup", "error"),
    (MODULE, "test_backend_specific[sqlite-de-DE]", "passed"),
    (MODULE, "test_backend_specific[postgresql-de-DE]", "failed"),
    (f"{MODULE}.TestInClass", "test_method", "passed"),
]


def specification(statement: str = "The system shall do it."):
    return parse_specification({
        "specification": {"title": "Test URS", "version": "7"},
        "areas": {"AUD": "Audit trail"},
        "requirements": [{"id": rid, "statement": statement, "regulation": ["21 CFR 11.10(e)"],
                          "risk": "high" if rid != "URS-AUD-004" else "low",
                          "tests": [f"{PATH}::{name}" for name in names]}
                         for rid, names in TRACES.items()]})


@pytest.fixture
def matrix(write_junit):
    return build_matrix(specification(), read_junit([write_junit(RESULTS)]))


def verdicts(matrix) -> dict[str, tuple[str, str]]:
    return {row.requirement.id: (row.verdict, row.reason) for row in matrix.rows}


def test_verdicts_follow_the_test_outcomes(matrix):
    assert verdicts(matrix) == {
        "URS-AUD-001": (VERIFIED, ""),
        "URS-AUD-002": (NOT_VERIFIED, A_TEST_FAILED),
        "URS-AUD-003": (NOT_VERIFIED, NOT_RUN),
        "URS-AUD-004": (NOT_VERIFIED, NOT_RUN),
        "URS-AUD-005": (VERIFIED, ""),
        "URS-AUD-006": (NOT_VERIFIED, A_TEST_FAILED),
        "URS-AUD-007": (NOT_VERIFIED, A_TEST_FAILED),
        "URS-AUD-008": (VERIFIED, ""),
        "URS-AUD-009": (VERIFIED, ""),
    }
    assert not matrix.high_risk_verified
    assert [row.requirement.id for row in matrix.not_verified("low")] == ["URS-AUD-004"]


def test_each_parametrisation_is_listed_with_its_outcome(matrix):
    row = next(r for r in matrix.rows if r.requirement.id == "URS-AUD-002")
    assert [(t.node_id, t.outcome) for t in row.tests] == [
        (f"{PATH}::test_passes[sqlite]", "passed"), (f"{PATH}::test_passes[postgresql]", "passed"),
        (f"{PATH}::test_fails[sqlite]", "passed"), (f"{PATH}::test_fails[postgresql]", "failed")]
    assert row.tests[-1].message == "assert 1 == 2"


def test_urs_tests_missing_from_the_results_are_reported(matrix):
    gone = f"{PATH}::test_was_removed"
    assert matrix.missing_tests() == [("URS-AUD-004", gone), ("URS-AUD-005", gone)]
    assert f"  {gone} (URS-AUD-004)" in matrix_text(matrix)


def test_results_that_verify_nothing_are_listed(matrix):
    assert matrix.untraced == (f"{MODULE}::test_passes_too",)


def test_backends_are_read_from_parametrised_ids(matrix, write_junit):
    assert matrix.run.backends() == ["sqlite", "postgresql"]
    assert matrix.header["Database backends"] == "sqlite, postgresql"
    sqlite_only = read_junit([write_junit([(MODULE, "test_x[sqlite]", "passed"),
                                           (MODULE, "test_y", "passed")], name="lite.xml")])
    assert sqlite_only.backends() == ["sqlite"]


def test_runs_from_several_files_are_traced_together(write_junit):
    runs = [write_junit([(MODULE, "test_passes[sqlite]", "passed")], name="sqlite.xml"),
            write_junit([(MODULE, "test_passes[postgresql]", "failed")], name="pg.xml")]
    matrix = build_matrix(specification(), read_junit(runs))
    assert verdicts(matrix)["URS-AUD-001"] == (NOT_VERIFIED, A_TEST_FAILED)
    assert [f.path for f in matrix.run.files] == [str(p) for p in runs]


def test_node_ids_become_junit_keys():
    assert result_key("tests/a/test_b.py::test_c[x/y.py::z]") == "tests.a.test_b::test_c[x/y.py::z]"
    assert result_key("tests/test_b.py::TestC::test_d") == "tests.test_b.TestC::test_d"


@pytest.mark.parametrize("content", ["not xml at all", "<html><body/></html>",
                                     '<testsuite><testcase name="x"/></testsuite>'])
def test_unreadable_results_are_refused_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.xml"
    path.write_text(content)
    with pytest.raises(JUnitError, match="broken.xml"):
        read_junit([path])


def test_text_and_json_reports(matrix):
    lines = matrix_text(matrix).splitlines()
    assert lines[0].split() == ["Requirement", "Risk", "Verdict", "Tests"]
    assert "URS-AUD-002   high   not verified  3 passed 1 failed" in lines
    assert f"    failed: {PATH}::test_fails[postgresql]" in lines
    document = json.loads(json.dumps(matrix_json(matrix)))
    assert document["totals"] == {"passed": 5, "failed": 4, "skipped": 1}
    assert document["requirements"][1]["verdict"] == NOT_VERIFIED
    assert document["results_files"][0]["sha256"] == matrix.run.files[0].sha256
    assert document["high_risk_verified"] is False


def test_html_report_is_standalone_and_names_every_requirement(write_junit, tmp_path):
    spec = specification(statement="Values <script>alert(1)</script> & \"quotes\" are text.")
    matrix = build_matrix(spec, read_junit([write_junit(RESULTS)]))
    out = tmp_path / "oq.html"
    out.write_text(matrix_html(matrix), encoding="utf-8")
    page = out.read_text(encoding="utf-8")
    for requirement_id in TRACES:
        assert f"<strong>{requirement_id}</strong>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page
    for label in ("Git commit", "Generated", "Database backends", "sqlite, postgresql",
                  "Test URS (version 7)", matrix.run.files[0].sha256):
        assert label in page
