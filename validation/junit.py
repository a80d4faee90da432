"""Test results of an OQ run, read from pytest JUnit XML files (``pytest --junitxml=FILE``).

A JUnit test case is named by its dotted ``classname`` (``tests.api.test_api_core``, plus
the class for tests in classes) and its ``name`` (``test_x[sqlite]``). ``result_key`` turns a
pytest node id into the same ``classname::name`` form, so that URS node ids can be matched
against results without guessing file paths back from dotted names.
"""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, SKIPPED, MISSING = "passed", "failed", "skipped", "missing"
# database backends of the shared test fixtures, as they appear in parametrised ids
KNOWN_BACKENDS = ("sqlite", "postgresql")


class JUnitError(ValueError):
    """A results file cannot be read as pytest JUnit XML; the message names the file."""


@dataclass(frozen=True)
class TestResult:
    key: str      # classname::name, e.g. tests.api.test_api_core::test_x[sqlite]
    name: str     # the test function with its parameters, e.g. test_x[sqlite]
    outcome: str  # passed | failed | skipped
    message: str  # why it failed or was skipped, empty when it passed

    # not a test class: pytest would try to collect it where a test module imports it
    __test__ = False


@dataclass(frozen=True)
class ResultsFile:
    path: str
    sha256: str   # evidence integrity: the report names exactly which file it was built from
    timestamp: str
    hostname: str
    tests: int


@dataclass(frozen=True)
class TestRun:
    files: tuple[ResultsFile, ...]
    results: tuple[TestResult, ...]

    __test__ = False

    def backends(self) -> list[str]:
        """The database backends that appear in the parameters of the test ids."""
        seen = {token for result in self.results
                for token in _parameters(result.name).split("-")}
        return [backend for backend in KNOWN_BACKENDS if backend in seen]

    def count(self, outcome: str) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)


def result_key(node_id: str) -> str:
    """``tests/a/test_b.py::Cls::test_c[p]`` -> ``tests.a.test_b.Cls::test_c[p]``.

    Parameters are left untouched: they may contain any character, "::" and "/" included.
    """
    base, bracket, parameters = node_id.partition("[")
    path, _, rest = base.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    *classes, function = rest.split("::")
    return "::".join([".".join([module, *classes]), function]) + bracket + parameters


def read_junit(paths: Sequence[Path]) -> TestRun:
    """Read one or more JUnit XML files (e.g. one run per database) into one TestRun."""
    files, results = [], []
    for path in paths:
        summary, cases = _read_file(Path(path))
        files.append(summary)
        results.extend(cases)
    return TestRun(tuple(files), tuple(results))


def _read_file(path: Path) -> tuple[ResultsFile, list[TestResult]]:
    try:
        data = path.read_bytes()
        # the site's own test output; expat >= 2.4.1 refuses entity-expansion bombs anyway
        root = ElementTree.fromstring(data)
    except (OSError, ElementTree.ParseError) as error:
        raise JUnitError(f"{path}: {error}") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if root.tag not in ("testsuite", "testsuites") or not suites:
        raise JUnitError(f"{path}: not a JUnit XML file (no <testsuite>)")
    cases = [_result(path, case) for suite in suites for case in suite.iter("testcase")]
    first = suites[0]
    summary = ResultsFile(str(path), hashlib.sha256(data).hexdigest(),
                          first.get("timestamp", ""), first.get("hostname", ""), len(cases))
    return summary, cases


def _result(path: Path, case: ElementTree.Element) -> TestResult:
    classname, name = case.get("classname"), case.get("name")
    if not classname or not name:
        raise JUnitError(f"{path}: a <testcase> lacks classname or name")
    return TestResult(f"{classname}::{name}", name, *_outcome(case))


def _outcome(case: ElementTree.Element) -> tuple[str, str]:
    # an error (in setup or teardown) counts as a failure: the test did not show the behaviour
    for tag, outcome in (("failure", FAILED), ("error", FAILED), ("skipped", SKIPPED)):
        element = case.find(tag)
        if element is not None:
            return outcome, _first_line(element.get("message") or element.text or tag)
    return PASSED, ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _parameters(name: str) -> str:
    _, bracket, rest = name.partition("[")
    return rest[:-1] if bracket and rest.endswith("]") else ""
