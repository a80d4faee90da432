"""RFC 9457 problem+json responses (DESIGN.md "Public REST API")."""
from __future__ import annotations

from typing import Any

from flask import Response, json

PROBLEM_BASE = "https://qms.example/problems/"  # stable identifiers, documented in docs/api.md


def problem(status: int, title: str, detail: str, *, code: str,
            errors: dict[str, list[str]] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")
