"""Liveness and readiness."""
from __future__ import annotations

from qms import __version__
from qms.api import api
from qms.api.schemas import Health
from qms.api.spec import endpoint
from qms.context import db_session
from audit import trail


@endpoint(api, "/health", "GET", summary="Service health", tag="system", public=True,
          response=Health)
def health():
    """Unauthenticated, for load balancers: answers only whether the database is reachable
    and where the audit chain head stands."""
    connection = db_session().connection()
    head = trail.head(connection)
    return {"status": "ok", "version": __version__, "database": connection.dialect.name,
            "audit_head": {"seq": head.seq, "hash": head.hash}}
