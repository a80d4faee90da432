"""RFC 9457 problem+json responses (DESIGN.md "Public REST API") and the catalogue of their
types: every ``type`` the API answers with, its status and the members it may carry beyond
the standard ones, so that the OpenAPI document describes each answer exactly
(``additionalProperties: false``) and clients can rely on the members they read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Response, json

PROBLEM_BASE = "https://qms.example/problems/"  # stable identifiers, documented in docs/api.md

STRINGS = {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True)
class ProblemType:
    """One problem ``type`` (PROBLEM_BASE + code): its status and, by name, the JSON Schema
    of each extra member it may carry (none is always present)."""
    code: str
    status: int
    description: str
    members: dict[str, dict] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.code


# The extra members of the 409 answers, by name; a name means the same thing wherever it
# appears. A new member is added here (and its test) before a service raises it.
RECORD = {"type": "string", "description": "a record number"}
CONFLICT_MEMBERS: dict[str, dict] = {
    "state": {"type": "string", "description": "the record's current state"},
    "open_actions": {"type": "array", "items": {"type": ["string", "integer"]},
                     "description": "the actions open from the current state, or the "
                                    "positions of a CAPA's actions not yet completed"},
    "version": {"type": "integer", "description": "the record's current version"},
    "number": RECORD, "material": RECORD, "supplier": RECORD, "batch": RECORD,
    "inspection": RECORD, "deviation": RECORD, "revision": RECORD, "supersedes": RECORD,
    "effective": RECORD,
    "lot_status": {"type": "string", "description": "the lot's current status"},
    "deviation_state": {"type": "string"},
    "stage": {"type": "string", "description": "an inspection stage"},
    "missing": {"type": ["array", "object"], "items": {"type": "string"},
                "additionalProperties": {"type": "integer"},
                "description": "what is still needed: field names, or the number of "
                               "samples still to record per characteristic"},
    "open_slots": {**STRINGS, "description": "change control approvals still required"},
    "verification_result": {"type": ["string", "null"]},
    "completed_by": {"type": "string", "description": "who completed the action"},
    "recorded_by": {"type": "string", "description": "who recorded the decision the "
                                                  "signature would confirm"},
}
GATE = {"type": "object", "additionalProperties": False,
        "required": ["code", "passed", "detail"],
        "properties": {"code": {"type": "string"}, "passed": {"type": "boolean"},
                       "detail": {"type": "string"}}}

PROBLEM_TYPES: tuple[ProblemType, ...] = (
    ProblemType("bad-request", 400, "The request cannot be read."),
    ProblemType("authentication-failed", 401, "No or invalid token, wrong username or "
                                              "password."),
    ProblemType("not-permitted", 403, "The caller's roles lack the permission."),
    ProblemType("password-change-required", 403, "The password is temporary or expired."),
    ProblemType("signature-refused", 403, "Wrong signature credentials or ineligible signer."),
    ProblemType("segregation-of-duties", 403, "E.g. approving one's own record."),
    ProblemType("not-found", 404, "Unknown record, user or URL."),
    ProblemType("method-not-allowed", 405, "The URL does not take this method; the Allow "
                                           "header lists those it takes."),
    ProblemType("invalid-transition", 409, "The action is not open from the current state.",
                {name: CONFLICT_MEMBERS[name] for name in ("state", "open_actions")}),
    ProblemType("conflict", 409, "The record's state, version or contents do not allow "
                                 "the request (e.g. a stale version).", CONFLICT_MEMBERS),
    ProblemType("release-gates-failed", 409, "A batch release whose gates do not all pass.",
                {"gates": {"type": "array", "items": GATE,
                           "description": "the failing gates"}}),
    ProblemType("request-entity-too-large", 413, "The body is larger than the limit."),
    ProblemType("invalid-input", 422, "The body, query or path is invalid; errors names "
                                      "each field."),
    ProblemType("account-locked", 423, "Locked after repeated failures."),
    ProblemType("audit-key-missing", 503, "The audit signing key file is missing: restore "
                                          "it from the backup."),
    ProblemType("too-many-attempts", 429, "Too many failed credential checks; the Retry-After "
                                          "header says when to try again."),
)
PROBLEMS_BY_CODE = {problem.code: problem for problem in PROBLEM_TYPES}


def problem(status: int, title: str, detail: str, *, code: str,
            errors: dict[str, list[str]] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def problem_schema(problem_type: ProblemType) -> dict:
    """The JSON Schema of one problem type's answers: the standard members, ``errors``
    (field -> messages, which any refusal naming a field carries) and its own members."""
    return {"type": "object", "description": problem_type.description,
            "required": ["type", "title", "status", "detail"],
            "additionalProperties": False,
            "properties": {"type": {"const": problem_type.uri},
                           "title": {"type": "string"},
                           "status": {"const": problem_type.status},
                           "detail": {"type": "string"},
                           "errors": {"type": "object", "additionalProperties": STRINGS},
                           **problem_type.members}}


def schema_name(problem_type: ProblemType) -> str:
    """The OpenAPI component name: conflict -> ConflictProblem."""
    return "".join(part.title() for part in problem_type.code.split("-")) + "Problem"
