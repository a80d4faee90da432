"""A user's API token dies after [security] api_token_idle_minutes without a request, as an
idle web session does (issue 9, point 12); each use restarts the clock."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from qms.db import utcnow
from qms.identity import tokens
from qms.identity.authentication import find_user
from qms.identity.models import ApiToken


def set_last_use(app, minutes_ago: int, *, kind: str | None = None) -> None:
    """As if every token (of ``kind``) had last been used ``minutes_ago`` (no waiting)."""
    moment = utcnow() - timedelta(minutes=minutes_ago)
    query = update(ApiToken).values(last_used_at=moment, created_at=moment)
    if kind:
        query = query.where(ApiToken.kind == kind)
    with app.extensions["qms"].db.unit_of_work() as session:
        session.execute(query)


def last_use(app):
    with app.extensions["qms"].db.reading() as session:
        return session.scalar(select(ApiToken.last_used_at).order_by(ApiToken.id))


def test_a_token_idle_for_the_limit_is_refused(app, client, make_user, auth_headers):
    headers = auth_headers(make_user("olga", "auditor"))
    set_last_use(app, minutes_ago=15)
    response = client.get("/api/v1/audit/events", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_read_restarts_the_idle_clock(app, client, make_user, auth_headers):
    headers = auth_headers(make_user("olga", "auditor"))
    set_last_use(app, minutes_ago=14)
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 200
    assert utcnow() - last_use(app) < timedelta(minutes=1)
    set_last_use(app, minutes_ago=14)  # 28 minutes after issue, 14 after the last use
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 200


def test_a_write_records_the_use_in_its_own_transaction(app, client, make_user, auth_headers):
    olga = make_user("olga", "auditor")
    headers = auth_headers(olga)
    set_last_use(app, minutes_ago=14)
    second = client.post("/api/v1/auth/tokens", headers=headers,
                         json={"username": "olga", "password": olga.password})
    assert second.status_code == 201
    assert utcnow() - last_use(app) < timedelta(minutes=1)


def test_service_tokens_have_no_idle_limit(app, make_user):
    make_user("erp.feed", "auditor")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        secret, _ = tokens.issue_token(session, actor="system",
                                       user=find_user(session, "erp.feed"),
                                       lifetime=timedelta(days=30), kind="service")
    set_last_use(app, minutes_ago=60 * 24 * 7, kind="service")
    response = app.test_client().get("/api/v1/audit/events",
                                     headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
