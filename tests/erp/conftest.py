"""The webhook receiver fixture: a real HTTP server on 127.0.0.1, closed after the test."""
from __future__ import annotations

import pytest

from tests.erp.receiver import Receiver


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()
