"""Fixtures of the deviation tests (shared with tests/capa through tests.deviations.support)."""
from __future__ import annotations

import pytest

from tests.deviations.support import RecordsClient, make_stock, make_team


@pytest.fixture
def api(client, auth_headers) -> RecordsClient:
    return RecordsClient(client, auth_headers)


@pytest.fixture
def team(make_user):
    return make_team(make_user)


@pytest.fixture
def stock(api, team):
    return make_stock(api, team)
