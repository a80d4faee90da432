"""The webhook receiver (a real HTTP server on 127.0.0.1, closed after the test) and a
plant whose lots produce ERP events."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.erp.receiver import Receiver
from tests.materials.conftest import MaterialsClient


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def plant(client, auth_headers, make_user):
    team = SimpleNamespace(production=make_user("paul.production", "production"),
                           reviewer=make_user("rita.reviewer", "qa_reviewer"),
                           approver=make_user("anna.approver", "qa_approver"))
    api = MaterialsClient(client, auth_headers, team)
    api.issue_tokens()
    api.material("RM-API")
    api.supplier("SUP-ACME")
    return api
