"""Smoke test of ``make bench``: the quick run completes and reports every section.

No timing is asserted: the figures depend on the machine, and a missed target is a
finding the benchmark prints, not a failure of the benchmark.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"writes": "audited write vs. plain insert",
            "chain": "chain verification vs. bare sha256 loop",
            "signing": "cost of one signing",
            "trace": "lot trace (genealogy) vs. the recursive CTE alone",
            "erp": "ERP delivery vs. the same work without the database"}


@pytest.mark.slow
def test_quick_run_prints_and_records_every_section(tmp_path):
    output = tmp_path / "latest.json"  # leaves the developer's benchmarks/results alone
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--skip-postgres",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for title in SECTIONS.values():
        assert f"== {title} ==" in completed.stdout, completed.stdout
    # the concurrent audited writers' chain is verified, not only timed
    assert "chain after the audited run" in completed.stdout
    document = json.loads(output.read_text())
    assert {figure["section"] for figure in document["figures"]} == set(SECTIONS)
    assert document["environment"]["quick"] is True
