"""The record core's extension points used by the domain modules: record types that number
themselves, domain revisions (revise_record), transition rules and consequences, the
not_owner segregation rule, and exact decimals in the database and the API."""
from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError
from sqlalchemy import bindparam, select, text, type_coerce

from qms.api.spec import DecimalString
from qms.db import ExactDecimal
from qms.errors import Conflict, InvalidTransition, SegregationOfDuties
from qms.identity.authentication import find_user
from qms.records import models as record_models
from qms.records.models import RecordVersion
from qms.records.service import apply_transition, create_record, find_record, revise_record
from qms.records.workflow import parse_workflows

FIELDS = {"title": "Line clearance", "doc_type": "sop", "summary": "",
          "effective_date": date(2026, 5, 4)}


@pytest.fixture
def people(make_user):
    return (make_user("paul.author", "production"), make_user("anna.approver", "qa_approver"),
            make_user("rita.reviewer", "qa_reviewer"))


@pytest.fixture
def qms_state(app):
    return app.extensions["qms"]


def _create(session, qms_state, number=None):
    return create_record(session, qms_state.workflows.get("document"),
                         find_user(session, "paul.author"), FIELDS, number=number)


def _head(session) -> int:
    return session.execute(text("SELECT seq FROM audit_head")).scalar_one()


def test_a_record_type_may_choose_its_number_but_never_reuse_one(qms_state, people):
    with qms_state.db.unit_of_work() as session:
        assert _create(session, qms_state, number="SOP-LINE-3").number == "SOP-LINE-3"
    with qms_state.db.session(write=True) as session:
        with pytest.raises(Conflict, match="already exists"):
            _create(session, qms_state, number="SOP-LINE-3")


def test_a_workflow_without_prefix_numbers_nothing_itself(qms_state):
    document = {"workflows": {"document": {
        "label": "Doc", "initial": "draft", "states": ["draft", "done"],
        "transitions": [{"action": "finish", "from": ["draft"], "to": "done",
                         "permission": "document.submit"}]}}}
    registry = parse_workflows(document, qms_state.security.roles, ["document"])
    assert registry.get("document").prefix is None


def test_revise_record_versions_and_audits_a_domain_change(qms_state, people, monkeypatch):
    _with_rules(monkeypatch, decision_revisions=frozenset({"expire"}))
    with qms_state.db.unit_of_work() as session:
        number = _create(session, qms_state).number
    with qms_state.db.unit_of_work() as session:
        record = find_record(session, record_models.record_type_of("document"), number)
        head = _head(session)
        revise_record(session, record, "system", action="expire", reason="past its date",
                      state="obsolete", details={"because": "scheduled job"},
                      event="document.record.expired")
        assert record.version == 2 and record.state == "obsolete"
        events = session.execute(text("SELECT action, actor, canonical FROM audit_events "
                                      "WHERE seq > :s ORDER BY seq"), {"s": head}).all()
        version = session.scalar(select(RecordVersion).where(RecordVersion.record_id == number,
                                                             RecordVersion.version == 2))
    assert [(e.action, e.actor) for e in events] == [("document.record.expired", "system")]
    assert '"before":{"state":"draft"}' in events[0].canonical
    assert '"because":"scheduled job"' in events[0].canonical
    assert (version.action, version.state, version.reason) == ("expire", "obsolete",
                                                               "past its date")


def test_a_revision_that_changes_nothing_is_a_programming_error(qms_state, people,
                                                               monkeypatch):
    _with_rules(monkeypatch, content_revisions=frozenset({"noop"}))
    with qms_state.db.unit_of_work() as session:
        record = _create(session, qms_state)
    with qms_state.db.session(write=True) as session:
        record = session.merge(record)
        with pytest.raises(ValueError, match="changes nothing"):
            revise_record(session, record, "system", action="noop", reason=None)


def test_a_revision_its_record_type_does_not_declare_is_a_programming_error(qms_state,
                                                                          people):
    """Authorship is declared for every revision: one that is neither a content change nor
    a decision of its record type is refused before anything is written."""
    with qms_state.db.unit_of_work() as session:
        number = _create(session, qms_state).number
    with qms_state.db.session(write=True) as session:
        record = find_record(session, record_models.record_type_of("document"), number)
        head = _head(session)
        with pytest.raises(ValueError, match="declared neither"):
            revise_record(session, record, "system", action="expire", reason="past its date",
                          state="obsolete")
        assert _head(session) == head and record.version == 1


def _with_rules(monkeypatch, **rules):
    original = record_models.record_type_of("document")
    monkeypatch.setitem(record_models._RECORD_TYPES, "document",
                        dataclasses.replace(original, **rules))


def test_a_transition_rule_refuses_before_anything_is_written(qms_state, people,
                                                             monkeypatch):
    def refuse(session, record, transition, actor, reason):
        raise InvalidTransition(f"{record.number} may not {transition.action} today")
    _with_rules(monkeypatch, before_transition=refuse)
    with qms_state.db.unit_of_work() as session:
        number = _create(session, qms_state).number
    with qms_state.db.session(write=True) as session:
        head = _head(session)
        record = find_record(session, record_models.record_type_of("document"), number)
        with pytest.raises(InvalidTransition, match="may not submit"):
            apply_transition(session, qms_state.security, qms_state.workflows.get("document"),
                             record, find_user(session, "paul.author"), "submit", None, None)
        assert _head(session) == head and record.version == 1


def test_a_consequence_runs_after_the_new_version_in_the_same_transaction(
        qms_state, people, monkeypatch):
    seen = []
    _with_rules(monkeypatch, after_transition=lambda session, record, transition, actor,
                reason: seen.append((record.state, record.version, transition.action)))
    with qms_state.db.unit_of_work() as session:
        number = _create(session, qms_state).number
    with qms_state.db.unit_of_work() as session:
        record = find_record(session, record_models.record_type_of("document"), number)
        apply_transition(session, qms_state.security, qms_state.workflows.get("document"),
                         record, find_user(session, "paul.author"), "submit", None, None)
    assert seen == [("in_review", 2, "submit")]


def test_not_owner_keeps_an_owner_from_signing(qms_state, people, monkeypatch):
    _with_rules(monkeypatch, owners=lambda record: {"rita.reviewer"})
    workflow = qms_state.workflows.get("document")
    review = workflow.find("in_review", "review")
    monkeypatch.setitem(qms_state.workflows.workflows, "document", dataclasses.replace(
        workflow, transitions=tuple(dataclasses.replace(t, segregation=("not_owner",))
                                    if t is review else t for t in workflow.transitions)))
    with qms_state.db.unit_of_work() as session:
        record = _create(session, qms_state)
        apply_transition(session, qms_state.security, qms_state.workflows.get("document"),
                         record, find_user(session, "paul.author"), "submit", None, None)
        number = record.number
    reviewer = people[2]
    with qms_state.db.session(write=True) as session:
        record = find_record(session, record_models.record_type_of("document"), number)
        credentials = {"username": reviewer.username, "password": reviewer.password,
                       "meaning": "reviewed"}
        with pytest.raises(SegregationOfDuties, match="owns"):
            apply_transition(session, qms_state.security, qms_state.workflows.get("document"),
                             record, find_user(session, reviewer.username), "review", None,
                             credentials, expected_version=record.version)


@pytest.mark.parametrize("value", ["12.300", "0.000001", "-4", "123456789012345.123456789"])
def test_exact_decimals_come_back_from_the_database_as_written(qms_state, value):
    with qms_state.db.reading() as session:
        stored = session.scalar(select(type_coerce(bindparam("v", Decimal(value),
                                                             type_=ExactDecimal), ExactDecimal)))
    assert isinstance(stored, Decimal) and str(stored) == value


@pytest.mark.parametrize("value", [12.3, Decimal("NaN"), Decimal("Infinity")])
def test_exact_decimal_columns_refuse_floats_and_non_finite_values(value):
    with pytest.raises(ValueError, match="exact decimal"):
        ExactDecimal().process_bind_param(value, dialect=None)


class _Measurement(Schema):
    value = DecimalString(max_places=3)
    quantity = DecimalString(positive=True)
    stock = DecimalString(non_negative=True)


def test_decimal_strings_load_exactly():
    loaded = _Measurement().load({"value": "12.300", "quantity": "0.5", "stock": "0"})
    assert loaded == {"value": Decimal("12.300"), "quantity": Decimal("0.5"),
                      "stock": Decimal("0")}
    assert _Measurement().dump({"value": Decimal("12.300")}) == {"value": "12.300"}


@pytest.mark.parametrize("body, field, message", [
    ({"value": 12.3}, "value", "as strings"),
    ({"value": 12}, "value", "as strings"),
    ({"value": "1e3"}, "value", "plain decimal"),
    ({"value": "12.3456"}, "value", "at most 3 decimal places"),
    ({"value": " 12"}, "value", "plain decimal"),
    ({"quantity": "0"}, "quantity", "greater than zero"),
    ({"quantity": "-1"}, "quantity", "greater than zero"),
    ({"stock": "-0.1"}, "stock", "must not be negative"),
])
def test_decimal_strings_refuse_numbers_and_malformed_text(body, field, message):
    with pytest.raises(ValidationError) as refused:
        _Measurement().load(body)
    assert message in " ".join(refused.value.messages[field])
