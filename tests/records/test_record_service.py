"""The generic record service below the API: gapless numbers, snapshots, flush-never-commit."""
from __future__ import annotations

import hashlib
import threading
from datetime import date

import pytest
from sqlalchemy import select

from audit import trail
from qms.documents.models import Document
from qms.identity.authentication import find_user
from qms.records.models import RecordVersion, content_digest, content_value
from qms.records.service import create_record, record_history, update_record

FIELDS = {"title": "Line clearance", "doc_type": "work_instruction", "summary": "",
          "effective_date": date(2026, 5, 4)}


@pytest.fixture
def author(make_user):
    return make_user("paul.author", "production")


def _create(app, session, username="paul.author"):
    state = app.extensions["qms"]
    return create_record(session, state.workflows.get("document"), find_user(session, username),
                         FIELDS)


def test_a_rolled_back_creation_gives_its_number_back(app, author):
    db = app.extensions["qms"].db
    with db.session(write=True) as session:
        abandoned = _create(app, session).number
        session.rollback()
    with db.unit_of_work() as session:
        kept = _create(app, session).number
    assert kept == abandoned and kept.endswith("-00001")


def test_services_flush_but_never_commit(app, author):
    db = app.extensions["qms"].db
    with db.session(write=True) as session:
        head = trail.head(session)
        document = _create(app, session)
        update_record(session, app.extensions["qms"].workflows.get("document"), document,
                      find_user(session, "paul.author"), {"title": "Line clearance, v2"},
                      "wording")
        assert trail.head(session).seq == head.seq + 2
        session.rollback()
    with db.reading() as session:
        assert session.scalars(select(Document)).all() == []
        assert trail.head(session) == head


def test_snapshot_is_canonical_content_and_its_sha256(app, author):
    db = app.extensions["qms"].db
    with db.unit_of_work() as session:
        number = _create(app, session).number
    with db.reading() as session:
        version = session.scalar(select(RecordVersion).where(RecordVersion.record_id == number))
        assert version.content == ('{"doc_type":"work_instruction","effective_date":"2026-05-04",'
                                   '"summary":"","title":"Line clearance"}')
        assert version.content_hash == hashlib.sha256(version.content.encode()).hexdigest()
        assert (version.version, version.action, version.state, version.changed_by) == \
            (1, "create", "draft", "paul.author")
        history = record_history(session, session.scalar(select(Document)))
        assert history["versions"][0]["changes"]["title"] == {"before": None,
                                                              "after": "Line clearance"}


def test_content_values_are_canonical():
    from decimal import Decimal

    assert content_value(Decimal("12.30")) == "12.30"
    assert content_value(date(2026, 1, 2)) == "2026-01-02"
    with pytest.raises(TypeError):
        content_value(1.5)
    assert content_digest({"b": 1, "a": "é"})[0] == '{"a":"é","b":1}'


def test_concurrent_creators_get_consecutive_numbers(app, author):
    db = app.extensions["qms"].db
    first_inside, numbers, errors = threading.Event(), [], []

    def slow_creator():
        try:
            with db.unit_of_work() as session:
                numbers.append(_create(app, session).number)
                first_inside.set()
                threading.Event().wait(0.3)  # hold the transaction open
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)
            first_inside.set()

    def second_creator():
        first_inside.wait(10)
        try:
            with db.unit_of_work() as session:
                numbers.append(_create(app, session).number)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=slow_creator), threading.Thread(target=second_creator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(n[-5:] for n in numbers) == ["00001", "00002"]
