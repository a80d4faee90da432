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
# positive_data_acceptance's own default, which the declared refusals extend by 422 (a 5xx
# is listed there because not_a_server_error, which stays on everywhere, reports it)
DEFAULT_EXPECTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

# Requests that match the schema yet are refused with a 422 naming the field, because the
# rule depends on data no schema can describe; for these operations that 422 is the
# declared, correct answer to schema-valid data.
NAMES_A_RECORD = "names a record or user by number; one that does not exist is refused"
STATE_DEPENDENT = "whether a reason is needed and which fields are editable depend on the " \
                  "record's state (config/workflows.toml)"
NUMERIC_ONLY = "limits, target and decimals belong to numeric characteristics only"
BUSINESS_REFUSALS: dict[str, str] = {
    **{f"PATCH /api/v1/{collection}/{{number}}": STATE_DEPENDENT
       for collection in ("documents", "materials", "suppliers", "lots", "batches",
                          "change-controls", "deviations", "capas")},
    "PATCH /api/v1/inspection-plans/{number}": f"{STATE_DEPENDENT}; {NUMERIC_ONLY}",
    **{f"POST /api/v1/{path}": NAMES_A_RECORD
       for path in ("capas", "change-controls", "deviations", "lots", "batches",
                    "batches/{number}/inputs", "batches/{number}/inputs/reversals",
                    "change-controls/{number}/impacted-items",
                    "deviations/{number}/lots", "deviations/{number}/lots/removals")},
    "POST /api/v1/inspection-plans": f"{NAMES_A_RECORD}; {NUMERIC_ONLY}",
    "POST /api/v1/inspection-plans/{number}/revisions": NUMERIC_ONLY,
    "POST /api/v1/inspections": f"{NAMES_A_RECORD}; the lot (incoming) or the batch (in "
                                "process, final) as the stage says",
    "POST /api/v1/inspections/{number}/results": "a result fits its inspection: a "
        "characteristic of the plan, a sample within the sample size, a correction of an "
        "existing result",
}


# Operations that would end the run's own authentication: the rest of the run would then
# test nothing but 401s. They are tested with their own tokens in tests/api.
ENDS_THE_RUNS_SESSION = {
    "DELETE /api/v1/auth/tokens/{token_id}": "revokes the run's own token",
    "POST /api/v1/auth/password": "a password change revokes every token of its user",
}


def configuration() -> str:
    """schemathesis.toml: each declared refusal, with its reason, as an expected status."""
    lines = []
    for name, reason in sorted(BUSINESS_REFUSALS.items()):
        lines += [f"# {reason}", "[[operations]]", f"include-name = {json.dumps(name)}",
                  "checks.positive_data_acceptance.expected-statuses = "
                  f"{json.dumps(DEFAULT_EXPECTED + ['422'])}", ""]
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
               "--phases", phases, "--workers", "1",
               *(option for name in ENDS_THE_RUNS_SESSION for option in ("--exclude-name", name))]
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
    # a run whose token stopped working passes while testing nothing (a 403 is the role's
    # permission, listed apart by schemathesis)
    assert "401 Unauthorized (" not in result.stdout, result.stdout
