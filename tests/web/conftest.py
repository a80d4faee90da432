"""Helpers for web tests: the test client runs with CSRF protection ON, so every POST takes
the token from a page the way a browser does."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from audit.schema import audit_events

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token_of(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


@pytest.fixture
def csrf(client):
    """csrf(path="/login") -> the CSRF token of the session, read from that page."""
    def token(path: str = "/login") -> str:
        response = client.get(path, follow_redirects=True)
        return csrf_token_of(response.text)
    return token


@pytest.fixture
def sign_in(client, csrf):
    """sign_in(user, password=None) -> the response to the login POST (not followed)."""
    def post(user, password: str | None = None, next_path: str = ""):
        return client.post("/login", data={
            "csrf_token": csrf("/login"), "username": user.username,
            "password": user.password if password is None else password, "next": next_path})
    return post


@pytest.fixture
def events(app):
    """events(action=..., actor=...) -> matching audit rows, in seq order."""
    def query(**where) -> list:
        conditions = [getattr(audit_events.c, key) == value for key, value in where.items()]
        with app.extensions["qms"].db.engine.connect() as connection:
            return list(connection.execute(
                select(audit_events).where(*conditions).order_by(audit_events.c.seq)))
    return query
