"""`qms validate`: installation qualification of this instance and, given the JUnit XML of a
test run, the traceability matrix of the operational qualification."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from validation import render
from validation.iq import IQReport, iq_json, iq_section, iq_text, run_iq
from validation.junit import JUnitError, read_junit
from validation.requirements import RequirementsError, load_specification
from validation.trace import TraceMatrix, build_matrix, matrix_json, matrix_sections, matrix_text

_OUTPUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.command("validate")
@click.option("--junit", "junit_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JUnit XML of the OQ test run (pytest --junitxml=FILE); repeat for "
                   "several runs, e.g. one per database.")
@click.option("--urs", "urs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="User requirements file (default: the URS shipped with QMS).")
@click.option("--html", "html_out", type=_OUTPUT, help="Write the HTML report here.")
@click.option("--json", "json_out", type=_OUTPUT, help="Write the JSON report here.")
@with_appcontext
def validate(junit_files: tuple[Path, ...], urs_file: Path | None, html_out: Path | None,
             json_out: Path | None) -> None:
    """Run the installation qualification and, with --junit, trace every requirement to its
    test results. Exits 0 only when every IQ check passes and, with --junit, every
    high-risk requirement is verified."""
    iq = run_iq()
    matrix = _trace(junit_files, urs_file) if junit_files else None
    click.echo(iq_text(iq))
    if matrix is not None:
        click.echo(matrix_text(matrix))
    if html_out:
        html_out.write_text(_html_report(iq, matrix), encoding="utf-8")
    if json_out:
        json_out.write_text(json.dumps(_json_report(iq, matrix), indent=2, ensure_ascii=False)
                            + "\n", encoding="utf-8")
    passed = _summarise(iq, matrix)
    sys.exit(0 if passed else 1)


def _trace(junit_files: tuple[Path, ...], urs_file: Path | None) -> TraceMatrix:
    try:
        return build_matrix(load_specification(urs_file), read_junit(junit_files))
    except (RequirementsError, JUnitError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


def _passed(iq: IQReport, matrix: TraceMatrix | None) -> bool:
    return iq.passed and (matrix is None or matrix.high_risk_verified)


def _summarise(iq: IQReport, matrix: TraceMatrix | None) -> bool:
    """Print the summary; True when the validation passed."""
    failed = ", ".join(check.id for check in iq.failed())
    click.echo(f"IQ: {len(iq.checks) - len(iq.failed())} of {len(iq.checks)} checks passed"
               + (f"; FAILED: {failed}" if failed else ""))
    if matrix is not None:
        verified = len(matrix.rows) - len(matrix.not_verified())
        high = ", ".join(row.requirement.id for row in matrix.not_verified("high"))
        click.echo(f"OQ: {verified} of {len(matrix.rows)} requirements verified; "
                   f"{len(matrix.missing_tests())} URS tests missing from the results"
                   + (f"; high-risk NOT verified: {high}" if high else ""))
    passed = _passed(iq, matrix)
    click.echo("validation PASSED" if passed else "validation FAILED")
    return passed


def _html_report(iq: IQReport, matrix: TraceMatrix | None) -> str:
    header = dict(matrix.header if matrix is not None else iq.header)
    header.update({k: v for k, v in iq.header.items() if k in ("Instance", "Database")})
    sections = [iq_section(iq)] + (matrix_sections(matrix) if matrix is not None else [])
    title = "QMS validation report: IQ" + (" and OQ" if matrix is not None else "")
    return render.page(title, header, sections)


def _json_report(iq: IQReport, matrix: TraceMatrix | None) -> dict:
    return {"passed": _passed(iq, matrix), "iq": iq_json(iq),
            "oq": matrix_json(matrix) if matrix is not None else None}
