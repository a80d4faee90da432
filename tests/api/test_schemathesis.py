"""A bounded run of schemathesis (an independent client, pinned in pyproject.toml) against a
real server on a real database, as two roles (issue 9, point 15): every check on, a fixed
seed and a few examples per operation; the only exceptions are the business refusals
declared below, each with its reason. A failure prints schemathesis' report, with a curl
command reproducing each finding."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from qms.api.openapi import build_openapi

REPOSITORY = Path(__file__).resolve().parents[2]
HOOKS = "tests.api.schemathesis_hooks"  # whole numbers written as integers (see there)

EXAMPLES_PER_OPERATION = 3
# the QA approver reaches most operations and gets every phase; the inspector, refused
# most writes, skips the coverage phase (boundary values of bodies it may not send), which
# keeps the run within about three minutes per database
PHASES = {"qa_approver": "examples,coverage,fuzzing,stateful",
          "inspector": "examples,fuzzing,stateful"}
ALWAYS_EXPECTED = ["2xx", "401", "403", "404", "409"]

# Requests that match the schema yet are refused with 422 naming the field, because the
# rule depends on data no schema can describe. positive_data_acceptance expects a 2xx for
# schema-valid data; for these operations a 422 is the declared, correct answer.
NAMES_A_RECORD = "the body names a record or user by number; one that does not exist is " \
                 "refused with 422 naming the field (the schema cannot list what exists)"
BUSINESS_REFUSALS: dict[str, str] = {
    **{f"PATCH /api/v1/{collection}/{{number}}":
       "whether an edit needs a reason, and which fields are editable, depends on the "
       "record's state (config/workflows.toml), which the schema cannot express; the edit "
       "is refused naming each field"
       for collection in ("documents", "materials", "suppliers", "lots", "batches",
                          "inspection-plans", "change-controls", "deviations", "capas")},
    **{f"POST /api/v1/{path}": NAMES_A_RECORD
       for path in ("capas", "change-controls", "deviations", "lots", "batches",
                    "batches/{number}/inputs", "batches/{number}/inputs/reversals",
                    "change-controls/{number}/impacted-items",
                    "deviations/{number}/lots", "deviations/{number}/lots/removals",
                    "inspection-plans", "inspections", "inspections/{number}/results")},
    "POST /api/v1/inspection-plans/{number}/revisions":
        "a characteristic's limits, target and decimals belong to numeric characteristics "
        "only: a rule across fields, refused naming each field",
}
CROSS_FIELD_RULES = {
    "PATCH /api/v1/inspection-plans/{number}": "characteristics: limits for numeric ones only",
    "POST /api/v1/inspection-plans": "characteristics: limits for numeric ones only",
    "POST /api/v1/inspections": "either lot_number (incoming) or batch_number (in process, "
                                "final), as the stage says",
}


def configuration() -> str:
    """schemathesis.toml: the declared refusals as per-operation expected statuses."""
    operations = {**BUSINESS_REFUSALS}
    for name, rule in CROSS_FIELD_RULES.items():
        operations[name] = f"{operations.get(name, '')} {rule}".strip()
    lines = []
    for name, reason in sorted(operations.items()):
        lines += [f"# {reason}", "[[operations]]", f"include-name = {json.dumps(name)}",
                  "checks.positive_data_acceptance.expected-statuses = "
                  f"{json.dumps(ALWAYS_EXPECTED + ['422'])}", ""]
    return "\n".join(lines)


@pytest.fixture
def live_server(app):
    """The app on a free local port, served by werkzeug in a thread (one request at a time,
    as schemathesis sends them)."""
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


def run_schemathesis(base_url: str, token: str, phases: str,
                     work: Path) -> subprocess.CompletedProcess:
    document, config = work / "openapi.json", work / "schemathesis.toml"
    document.write_text(json.dumps(build_openapi()))
    config.write_text(configuration())
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
               "--no-color", "run", str(document), "--url", base_url,
               "--header", f"Authorization: Bearer {token}", "--checks", "all",
               "--max-examples", str(EXAMPLES_PER_OPERATION), "--generation-deterministic",
               "--phases", phases, "--workers", "1"]
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(command, capture_output=True, text=True, cwd=work, timeout=900,
                          env=environment)


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(PHASES))
def test_the_api_keeps_its_published_contract(live_server, make_user, token_for, role,
                                              tmp_path):
    token = token_for(make_user(f"contract.{role}", role))
    result = run_schemathesis(live_server, token, PHASES[role], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
