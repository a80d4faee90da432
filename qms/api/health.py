"""Liveness and readiness."""
from __future__ import annotations

from flask import g

from qms import __version__
from qms.api import api
from qms.api.schemas import Health
from qms.api.spec import endpoint
from qms.context import db_session
from audit import trail


@endpoint(api, "/health", "GET", summary="Service health", tag="system", public=True,
          response=Health)
def health():
    """Unauthenticated, for load balancers: answers only that the service is up and its
    database reachable. The version, the database type and the audit chain head help an
    attacker choose an exploit or watch activity, so only an authenticated caller (a
    bearer token) gets them."""
    connection = db_session().connection()
    head = trail.head(connection)
    if g.api_user is None:
        return {"status": "ok"}
    return {"status": "ok", "version": __version__, "database": connection.dialect.name,
            "audit_head": {"seq": head.seq, "hash": head.hash}}
