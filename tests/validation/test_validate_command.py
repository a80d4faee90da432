"""`qms validate` end to end through the Flask CLI runner: exit codes, summary, reports."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from validation.cli import validate
from validation.junit import result_key
from validation.requirements import load_specification


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(validate, list(args))


def urs_results(failing: set[str] = frozenset()) -> list[tuple[str, str, str]]:
    """A result for every test the shipped URS names: passed, or failed for the tests of the
    requirements in ``failing``."""
    results = []
    for requirement in load_specification().requirements:
        outcome = "failed" if requirement.id in failing else "passed"
        for pattern in requirement.tests:
            classname, _, name = result_key(pattern).partition("::")
            results.append((classname, f"{name}[sqlite]", outcome))
    return results


@pytest.fixture
def full_pass(write_junit) -> Path:
    return write_junit(urs_results(), name="oq.xml")


def test_validate_passes_on_a_qualified_instance_and_writes_reports(installed, full_pass,
                                                                    tmp_path):
    html_out, json_out = tmp_path / "report.html", tmp_path / "report.json"
    result = invoke(installed, "--junit", str(full_pass), "--html", str(html_out),
                    "--json", str(json_out))
    assert result.exit_code == 0, result.output
    requirements = load_specification().requirements
    assert "IQ: 13 of 13 checks passed" in result.output
    assert f"OQ: {len(requirements)} of {len(requirements)} requirements verified" in result.output
    assert result.output.rstrip().endswith("validation PASSED")
    page = html_out.read_text(encoding="utf-8")
    for requirement in requirements:
        assert f"<strong>{requirement.id}</strong>" in page
    assert "IQ-12" in page and "Instance" in page
    report = json.loads(json_out.read_text(encoding="utf-8"))
    assert report["passed"] is True and report["iq"]["passed"] is True
    assert len(report["oq"]["requirements"]) == len(requirements)


def test_validate_fails_when_a_high_risk_requirement_is_not_verified(installed, write_junit):
    high = next(r for r in load_specification().requirements if r.risk == "high")
    junit = write_junit(urs_results(failing={high.id}))
    result = invoke(installed, "--junit", str(junit))
    assert result.exit_code == 1
    assert f"high-risk NOT verified: {high.id}" in result.output
    assert "validation FAILED" in result.output


def test_validate_tolerates_a_low_risk_gap(installed, write_junit):
    low = next(r for r in load_specification().requirements if r.risk == "low")
    result = invoke(installed, "--junit", str(write_junit(urs_results(failing={low.id}))))
    assert result.exit_code == 0, result.output
    assert f"  {low.id} (low): a listed test failed" in result.output


def test_validate_fails_when_an_iq_check_fails(installed, full_pass):
    installed.extensions["qms"].audit_key_path.chmod(0o644)
    result = invoke(installed, "--junit", str(full_pass))
    assert result.exit_code == 1
    assert "IQ-07  FAIL" in result.output and "FAILED: IQ-07" in result.output


def test_validate_without_results_runs_the_iq_only(installed, tmp_path):
    html_out = tmp_path / "iq.html"
    result = invoke(installed, "--html", str(html_out))
    assert result.exit_code == 0, result.output
    assert "OQ:" not in result.output
    assert "Installation qualification" in html_out.read_text(encoding="utf-8")


def test_unreadable_results_or_urs_exit_non_zero_with_a_message(installed, tmp_path, full_pass):
    broken = tmp_path / "broken.xml"
    broken.write_text("<nope")
    result = invoke(installed, "--junit", str(broken))
    assert result.exit_code == 1 and "error:" in result.output and "broken.xml" in result.output
    urs = tmp_path / "urs.toml"
    urs.write_text("[specification]\n")
    result = invoke(installed, "--junit", str(full_pass), "--urs", str(urs))
    assert result.exit_code == 1 and "urs.toml" in result.output
