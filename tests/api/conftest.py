"""Fixtures shared by the API tests: an author (production role) and a draft document."""
from __future__ import annotations

import pytest

import qms.documents.api  # noqa: F401  (registers the record type and its routes before any app)


@pytest.fixture
def author(make_user, auth_headers) -> dict:
    return auth_headers(make_user("paul.author", "production"))


@pytest.fixture
def draft(client, author) -> str:
    created = client.post("/api/v1/documents", headers=author,
                          json={"title": "Cleaning of line 3", "doc_type": "sop"})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["number"]
