"""Every transition of every workflow, against every role, through the HTTP API.

For each record type a factory creates one record (authored by someone who holds no role
under test, so "not_author" never decides the outcome); for each transition and each state it
starts from, the record is put into that state (test set-up, straight in its table) and every
role tries it with a valid signature of its own. A role without the transition's permission
gets 403 and nothing changes (row counts, audit head, the record's state and version). A
role with it is never refused for permission: the transition happens, or the record's own
rules refuse it (409/422, again changing nothing) -- which the other tests cover.

Segregation of duties is tested per module (author approving, CAPA owner closing, inspector
accepting own inspection); here it is kept out of the way by construction.
"""
from __future__ import annotations

from collections.abc import Callable
from itertools import count

import pytest
from sqlalchemy import text

from qms.records.models import all_record_types, record_type_of
from tests.inspection.factories import inspection, inspection_plan

ROLES = ("inspector", "qa_reviewer", "qa_approver", "production", "auditor", "admin", "erp")
AUTHOR_ROLES = ("production", "qa_reviewer", "qa_approver", "inspector")


class Api:
    """The test client as one user or another."""

    def __init__(self, client, auth_headers, users):
        self.client, self.users = client, users
        self._headers = {name: auth_headers(user) for name, user in users.items()}

    def post(self, as_user: str, path: str, body: dict):
        return self.client.post(f"/api/v1{path}", json=body, headers=self._headers[as_user])

    def created(self, as_user: str, path: str, body: dict) -> dict:
        response = self.post(as_user, path, body)
        assert response.status_code == 201, (path, response.get_json())
        return response.get_json()

    def get(self, as_user: str, path: str):
        return self.client.get(f"/api/v1{path}", headers=self._headers[as_user])

    def version_of(self, path: str) -> int:
        """The record's version as an auditor reads it: what a signer names."""
        return self.get("role.auditor", path).get_json()["version"]


def _document(api: Api) -> str:
    return api.created("author", "/documents", {"title": "Line clearance",
                                                 "doc_type": "sop"})["number"]


_serial = count(1)


def _material(api: Api, kind: str = "raw") -> str:
    code = f"MAT-{next(_serial)}"
    api.created("author", "/materials", {"code": code, "name": "Lactose", "kind": kind,
                                         "unit": "kg", "shelf_life_days": 365})
    return code


def _supplier(api: Api, *, approved: bool = False) -> str:
    code = f"SUP-{next(_serial)}"
    api.created("author", "/suppliers", {"code": code, "name": "Acme Excipients"})
    if approved:
        response = api.post("role.qa_approver", f"/suppliers/{code}/transitions",
                            _request(api.users["role.qa_approver"], "approve", "approved", 1))
        assert response.status_code == 200, response.get_json()
    return code


def _lot(api: Api) -> str:
    return api.created("author", "/lots", {"material": _material(api),
                                           "supplier": _supplier(api, approved=True),
                                           "quantity": "100", "unit": "kg"})["number"]


def _batch(api: Api) -> str:
    return api.created("author", "/batches", {"material": _material(api, "intermediate"),
                                              "line": "L1", "quantity": "50", "unit": "kg",
                                              "inputs": []})["number"]


def _deviation(api: Api) -> str:
    return api.created("author", "/deviations", {
        "title": "Temperature excursion", "description": "Cold room at 9 °C for 2 h",
        "kind": "unplanned", "severity": "minor", "occurred_on": "2026-01-01"})["number"]


def _capa(api: Api) -> str:
    return api.created("author", "/capas", {
        "source": "audit", "source_reference": "AUD-2026-3", "title": "Label checks",
        "problem_statement": "Labels were not reconciled", "owner": "author"})["number"]


def _change_control(api: Api) -> str:
    return api.created("author", "/change-controls", {
        "title": "New blender", "change_type": "equipment", "risk": "low",
        "description": "Replace blender B2", "justification": "End of life",
        "implementation_plan": "IQ/OQ, then switch", "impacted_items": []})["number"]


# record type -> factory creating one record as "author"; every registered type needs one
FACTORIES: dict[str, Callable[[Api], str]] = {
    "document": _document, "material": lambda api: _material(api),
    "supplier": lambda api: _supplier(api), "lot": _lot, "batch": _batch,
    "deviation": _deviation, "capa": _capa, "change_control": _change_control,
    "inspection_plan": inspection_plan, "inspection": inspection,
}


@pytest.fixture
def api(client, auth_headers, make_user) -> Api:
    users = {f"role.{role}": make_user(f"role.{role}", role) for role in ROLES}
    users["author"] = make_user("author", *AUTHOR_ROLES)
    return Api(client, auth_headers, users)


def test_every_registered_record_type_is_covered():
    assert sorted(FACTORIES) == sorted(t.name for t in all_record_types())


@pytest.mark.parametrize("record_type", sorted(FACTORIES))
def test_every_transition_against_every_role(app, api, db_snapshot, record_type):
    qms_state = app.extensions["qms"]
    workflow, roles = qms_state.workflows.get(record_type), qms_state.security.roles
    number = FACTORIES[record_type](api)
    collection = record_type_of(record_type).collection
    outcomes = []
    for transition in workflow.transitions:
        for source in transition.sources:
            for role in ROLES:
                _put_in_state(app, record_type, number, source)
                before = (db_snapshot(), _state_and_version(app, record_type, number))
                response = api.post(f"role.{role}", f"/{collection}/{number}/transitions",
                                    _request(api.users[f"role.{role}"], transition.action,
                                             transition.meaning, before[1][1]))
                permitted = roles.allows([role], transition.permission)
                outcomes.append((transition.action, source, role, response.status_code))
                if not permitted:
                    assert response.status_code == 403, (transition.action, source, role,
                                                         response.get_json())
                    assert response.get_json()["type"].endswith("/not-permitted")
                if response.status_code != 200:
                    assert before == (db_snapshot(),
                                      _state_and_version(app, record_type, number)), \
                        (transition.action, source, role, response.get_json())
                else:
                    assert permitted
                    # the target, unless a consequence moved it on in a further version
                    # (the last change-control approval makes it approved)
                    state, version = response.get_json()["state"], response.get_json()["version"]
                    assert state == transition.target or version > before[1][1] + 1, \
                        (transition.action, source, role, state)
                if permitted:
                    assert response.status_code != 403, \
                        (transition.action, source, role, response.get_json())
    assert any(status == 200 for *_, status in outcomes), outcomes


def _request(user, action: str, meaning: str | None, version: int | None = None) -> dict:
    """The transition's request; a signed one names the version the signer saw."""
    body = {"action": action, "reason": "permission table test"}
    if meaning is not None:
        body["signature"] = {"username": user.username, "password": user.password,
                             "meaning": meaning}
        body["version"] = version
    return body


def _put_in_state(app, record_type: str, number: str, state: str) -> None:
    table = record_type_of(record_type).model.__tablename__
    with app.extensions["qms"].db.engine.begin() as connection:
        connection.execute(text(f"UPDATE {table} SET state = :state WHERE number = :number"),
                           {"state": state, "number": number})


def _state_and_version(app, record_type: str, number: str) -> tuple:
    table = record_type_of(record_type).model.__tablename__
    with app.extensions["qms"].db.engine.connect() as connection:
        return tuple(connection.execute(text(
            f"SELECT state, version FROM {table} WHERE number = :number"),
            {"number": number}).one())


@pytest.mark.parametrize("role", ["erp", "admin"])
def test_a_caller_who_may_not_read_records_learns_nothing_from_a_transition(api, db_snapshot,
                                                                          role):
    """Permission before state (issue 9, point 12): without record.read a transition request
    is refused (403) alike for any action, any state and a record that does not exist; the
    answer names no state and no open action."""
    number = _document(api)
    before = db_snapshot()
    for path in (f"/documents/{number}", "/documents/DOC-1999-00042"):
        for action in ("approve", "submit", "no_such_action"):
            response = api.post(f"role.{role}", f"{path}/transitions", {"action": action})
            assert response.status_code == 403, (path, action, response.get_json())
            _assert_tells_no_state(response.get_json())
    assert db_snapshot() == before


@pytest.mark.parametrize("role", ["auditor", "inspector"])
def test_a_reader_without_the_actions_permission_is_refused_before_the_state(api,
                                                                           db_snapshot, role):
    """A reader who holds no permission of the action is refused (403) before the record's
    state is looked at: approving a draft answers as approving a reviewed document would."""
    number = _document(api)
    before = db_snapshot()
    user = api.users[f"role.{role}"]
    for action, meaning in (("approve", "approved"), ("cancel", None)):
        response = api.post(f"role.{role}", f"/documents/{number}/transitions",
                            _request(user, action, meaning, 1))
        assert response.status_code == 403, (action, response.get_json())
        assert response.get_json()["type"].endswith("/not-permitted")
        _assert_tells_no_state(response.get_json())
    assert db_snapshot() == before


def _assert_tells_no_state(problem: dict) -> None:
    assert not {"state", "open_actions"} & set(problem), problem
    assert "draft" not in problem["detail"] and "open actions" not in problem["detail"]
