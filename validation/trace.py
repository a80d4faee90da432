"""The traceability matrix: each user requirement, the tests that verify it with their
outcome in an OQ run, and the requirement's verdict.

A requirement is *verified* only when at least one of its tests ran (passed or failed, not
skipped) and none failed; otherwise it is *not verified*, with the reason. A URS test that
matches no result at all is *missing*: the run did not include it, or it no longer exists.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from validation import render
from validation.junit import FAILED, MISSING, PASSED, SKIPPED, TestResult, TestRun, result_key
from validation.provenance import report_header
from validation.requirements import Requirement, Specification, pattern_matches

VERIFIED, NOT_VERIFIED = "verified", "not verified"
NOT_RUN = "no listed test ran"
A_TEST_FAILED = "a listed test failed"


@dataclass(frozen=True)
class TracedTest:
    pattern: str   # as written in the URS
    node_id: str   # the test that ran, with its parameters; the pattern when missing
    outcome: str   # passed | failed | skipped | missing
    message: str


@dataclass(frozen=True)
class TracedRequirement:
    requirement: Requirement
    tests: tuple[TracedTest, ...]

    @property
    def verdict(self) -> str:
        return VERIFIED if not self.reason else NOT_VERIFIED

    @property
    def reason(self) -> str:
        """Why the requirement is not verified; empty when it is."""
        outcomes = {test.outcome for test in self.tests}
        if FAILED in outcomes:
            return A_TEST_FAILED
        return "" if PASSED in outcomes else NOT_RUN


@dataclass(frozen=True)
class TraceMatrix:
    specification: Specification
    run: TestRun
    rows: tuple[TracedRequirement, ...]
    untraced: tuple[str, ...]  # results that verify no requirement (classname::name)
    header: dict[str, str]

    def missing_tests(self) -> list[tuple[str, str]]:
        """(requirement id, pattern) of every URS test that is not in the results."""
        return [(row.requirement.id, test.pattern) for row in self.rows for test in row.tests
                if test.outcome == MISSING]

    def not_verified(self, risk: str | None = None) -> list[TracedRequirement]:
        return [row for row in self.rows if row.verdict != VERIFIED
                and (risk is None or row.requirement.risk == risk)]

    @property
    def high_risk_verified(self) -> bool:
        """The OQ acceptance criterion of `qms validate`: every high-risk requirement verified."""
        return not self.not_verified("high")


def build_matrix(specification: Specification, run: TestRun) -> TraceMatrix:
    """Trace every requirement of ``specification`` to its results in ``run``."""
    rows = tuple(TracedRequirement(requirement, _traced_tests(requirement, run.results))
                 for requirement in specification.requirements)
    patterns = [result_key(p) for r in specification.requirements for p in r.tests]
    untraced = tuple(result.key for result in run.results
                     if not any(pattern_matches(p, result.key) for p in patterns))
    backends = ", ".join(run.backends()) or "none named in the test ids"
    header = report_header(**{"Requirements": f"{specification.title} (version "
                                              f"{specification.version})",
                              "Database backends": backends})
    return TraceMatrix(specification, run, rows, untraced, header)


def _traced_tests(requirement: Requirement,
                  results: tuple[TestResult, ...]) -> tuple[TracedTest, ...]:
    traced = []
    for pattern in requirement.tests:
        key = result_key(pattern)
        matched = [r for r in results if pattern_matches(key, r.key)]
        if not matched:
            traced.append(TracedTest(pattern, pattern, MISSING, "not in the test results"))
        module = pattern.partition("[")[0].rpartition("::")[0]
        traced.extend(TracedTest(pattern, f"{module}::{r.name}", r.outcome, r.message)
                      for r in matched)
    return tuple(traced)


def _counts(row: TracedRequirement) -> str:
    outcomes = [test.outcome for test in row.tests]
    return " ".join(f"{outcomes.count(o)} {o}" for o in (PASSED, FAILED, SKIPPED, MISSING)
                    if outcomes.count(o))


def matrix_text(matrix: TraceMatrix) -> str:
    """The matrix as a plain-text table, then what is not verified and what is missing."""
    lines = [f"{'Requirement':<13} {'Risk':<6} {'Verdict':<13} Tests"]
    lines += [f"{row.requirement.id:<13} {row.requirement.risk:<6} {row.verdict:<13} "
              f"{_counts(row)}" for row in matrix.rows]
    if matrix.not_verified():
        lines.append("Not verified:")
    for row in matrix.not_verified():
        lines.append(f"  {row.requirement.id} ({row.requirement.risk}): {row.reason}")
        lines += [f"    {test.outcome}: {test.node_id}" for test in row.tests
                  if test.outcome in (FAILED, SKIPPED)]
    missing = matrix.missing_tests()
    if missing:
        lines.append(f"URS tests missing from the results ({len(missing)}):")
    lines += [f"  {pattern} ({requirement_id})" for requirement_id, pattern in missing]
    return "\n".join(lines) + "\n"


def matrix_json(matrix: TraceMatrix) -> dict:
    """The matrix as JSON-ready data (the same content as the text and HTML reports)."""
    run = matrix.run
    return {
        "header": matrix.header,
        "results_files": [vars(f) for f in run.files],
        "totals": {o: run.count(o) for o in (PASSED, FAILED, SKIPPED)},
        "backends": run.backends(),
        "requirements": [_requirement_json(row) for row in matrix.rows],
        "missing_tests": [{"requirement": r, "test": p} for r, p in matrix.missing_tests()],
        "untraced_tests": list(matrix.untraced),
        "high_risk_verified": matrix.high_risk_verified,
    }


def _requirement_json(row: TracedRequirement) -> dict:
    requirement = row.requirement
    return {"id": requirement.id, "area": requirement.area, "statement": requirement.statement,
            "regulation": list(requirement.regulation), "risk": requirement.risk,
            "verdict": row.verdict, "reason": row.reason,
            "tests": [{"pattern": t.pattern, "test": t.node_id, "outcome": t.outcome,
                       "message": t.message} for t in row.tests]}


def matrix_sections(matrix: TraceMatrix) -> list[str]:
    """The OQ part of an HTML report: run summary, matrix, missing and untraced tests."""
    return [render.section("Operational qualification: test run", _run_summary(matrix)),
            render.section("Traceability matrix", _matrix_table(matrix)),
            render.section("URS tests missing from the results", _missing_table(matrix)),
            render.section("Tests that trace to no requirement", _untraced_list(matrix))]


def matrix_html(matrix: TraceMatrix) -> str:
    """A standalone HTML OQ report."""
    return render.page("QMS operational qualification report", matrix.header,
                       matrix_sections(matrix))


def _run_summary(matrix: TraceMatrix) -> str:
    run, rows = matrix.run, matrix.rows
    verified = sum(1 for row in rows if row.verdict == VERIFIED)
    files = render.table(["Results file", "sha256", "Run at", "Host", "Tests"], [
        [render.esc(f.path), f"<code>{f.sha256}</code>", render.esc(f.timestamp),
         render.esc(f.hostname), str(f.tests)] for f in run.files])
    totals = ", ".join(f"{run.count(o)} {o}" for o in (PASSED, FAILED, SKIPPED))
    high = render.badge("every high-risk requirement verified" if matrix.high_risk_verified
                        else f"{len(matrix.not_verified('high'))} high-risk requirement(s) "
                             "not verified", matrix.high_risk_verified)
    return (f"{files}<p>Results: {render.esc(totals)}.</p><p>{verified} of {len(rows)} "
            f"requirements verified. <span class=\"verdict\">{high}</span></p>")


def _matrix_table(matrix: TraceMatrix) -> str:
    rows = []
    for row in matrix.rows:
        requirement = row.requirement
        verdict = render.badge(row.verdict, row.verdict == VERIFIED)
        if row.reason:
            verdict += f"<br>{render.esc(row.reason)}"
        rows.append([f"<strong>{render.esc(requirement.id)}</strong>",
                     render.esc(requirement.statement),
                     "<br>".join(render.esc(c) for c in requirement.regulation),
                     render.esc(requirement.risk), _test_list(row.tests), verdict])
    return render.table(["ID", "Requirement", "Regulation", "Risk", "Tests", "Verdict"], rows)


def _test_list(tests: Iterable[TracedTest]) -> str:
    good = {PASSED: True, FAILED: False, MISSING: False, SKIPPED: None}
    items = "".join(f"<li>{render.badge(t.outcome, good[t.outcome])} "
                    f"<code>{render.esc(t.node_id)}</code>"
                    + (f"<br>{render.esc(t.message)}" if t.outcome == FAILED else "") + "</li>"
                    for t in tests)
    return f'<ul class="tests">{items}</ul>'


def _missing_table(matrix: TraceMatrix) -> str:
    missing = matrix.missing_tests()
    if not missing:
        return "<p>Every test named in the URS is in the results.</p>"
    return render.table(["Requirement", "Test"], [
        [render.esc(r), f"<code>{render.esc(p)}</code>"] for r, p in missing])


def _untraced_list(matrix: TraceMatrix) -> str:
    if not matrix.untraced:
        return "<p>Every test in the results verifies at least one requirement.</p>"
    items = "".join(f"<li><code>{render.esc(key)}</code></li>" for key in matrix.untraced)
    return (f"<details><summary>{len(matrix.untraced)} tests</summary>"
            f"<ul>{items}</ul></details>")
