"""Authorship across every workflow with a signing step (issue 9, point 4).

For every signed transition with the "not_author" rule, through the HTTP API: a record
created by "author" gets one content-changing version from a "contributor" who did not create
it (an edit, a lot named, a CAPA action, implementation notes, a reversed consumption, an
inspection result); put into the transition's source state (test set-up, straight in its
table, as tests/test_workflow_permissions.py does), the contributor's signature is refused
with 403 (segregation of duties) and the record is untouched; a "decider" holding the same roles is
not refused for segregation, and once the decider's signature is taken, the decider is still
no author (qms.records.service.authors_of): signing and deciding make nobody an author.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qms.records.models import record_type_of
from qms.records.service import authors_of, find_record
from qms.records.workflow import NOT_AUTHOR
from qms.release.config import ReleaseRules
from qms.release.service import EXTENSION as RELEASE_RULES
from qms.settings import load_toml
from tests.test_workflow_permissions import (AUTHOR_ROLES, FACTORIES, ROLES, Api, _lot,
                                             _put_in_state, _request, _state_and_version)

WORKFLOWS = Path(__file__).resolve().parent.parent / "config" / "workflows.toml"


def _signed_not_author_transitions() -> list[tuple[str, str, str]]:
    """(record type, action, source state) of every signed transition with not_author in
    config/workflows.toml, first source state each."""
    cases = []
    for record_type, table in load_toml(WORKFLOWS)["workflows"].items():
        for entry in table["transitions"]:
            if "meaning" in entry and NOT_AUTHOR in entry.get("segregation", []):
                cases.append((record_type, entry["action"], entry["from"][0]))
    return cases


CASES = _signed_not_author_transitions()


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _patch(api: Api, user: str, path: str, changes: dict) -> None:
    _ok(api.client.patch(f"/api/v1{path}", json={"changes": changes,
                                                  "reason": "contributor's correction"},
                         headers=api._headers[user]))


def _released_lot(api: Api) -> str:
    lot = _lot(api)
    _ok(api.post("role.qa_approver", f"/lots/{lot}/transitions",
                 _request(api.users["role.qa_approver"], "release", "released", 1)))
    return lot


def _reverse_a_consumption(api: Api, number: str) -> None:
    """"author" consumed a lot; the contributor only reverses part of it."""
    lot = _released_lot(api)
    _ok(api.post("author", f"/batches/{number}/inputs",
                 {"inputs": [{"lot_number": lot, "quantity": "5"}], "reason": "weighed in"}))
    _ok(api.post("contributor", f"/batches/{number}/inputs/reversals",
                 {"lot_number": lot, "quantity": "2", "reason": "booked 2 kg too much"}))


# record type -> (state the contribution is made in, the contributor's content change)
CONTRIBUTIONS: dict[str, tuple[str, Callable[[Api, str], None]]] = {
    "document": ("draft", lambda api, n: _patch(api, "contributor", f"/documents/{n}",
                                                {"summary": "Dry before use."})),
    "supplier": ("pending", lambda api, n: _patch(api, "contributor", f"/suppliers/{n}",
                                                  {"contact": "qa@acme.example"})),
    "lot": ("quarantine", lambda api, n: _patch(api, "contributor", f"/lots/{n}",
                                                {"supplier_lot": "ACME-77"})),
    "batch": ("in_production", _reverse_a_consumption),
    "deviation": ("open", lambda api, n: _ok(api.post(
        "contributor", f"/deviations/{n}/lots",
        {"lots": [_lot(api)], "batches": [], "reason": "also affected"}))),
    "capa": ("open", lambda api, n: _ok(api.post(
        "contributor", f"/capas/{n}/actions",
        {"description": "Reconcile labels daily", "owner": "author", "due_on": "2099-01-01",
         "reason": "second action"}), 201)),
    "change_control": ("approved", lambda api, n: _ok(api.post(
        "contributor", f"/change-controls/{n}/implementation",
        {"notes": "Blender B3 installed, IQ/OQ passed", "reason": "implemented"}))),
    "inspection_plan": ("draft", lambda api, n: _patch(api, "contributor",
                                                       f"/inspection-plans/{n}",
                                                       {"title": "Incoming check, rev."})),
    "inspection": ("open", lambda api, n: _ok(api.post(
        "contributor", f"/inspections/{n}/results",
        {"results": [{"characteristic": "VIS", "passed": True}]}), 201)),
}


# (record type, source state) -> what a signer records before signing there: the
# effectiveness verification is the verifier's decision (a decision revision, no authorship),
# and only whoever recorded it signs it
DECISIONS: dict[tuple[str, str], Callable[[Api, str, str], None]] = {
    ("change_control", "implemented"): lambda api, n, user: _ok(api.post(
        user, f"/change-controls/{n}/verification",
        {"result": "effective", "notes": f"Blend uniformity within limits, checked by {user}",
         "reason": "verified"})),
}


@pytest.fixture
def api(client, auth_headers, make_user) -> Api:
    users = {f"role.{role}": make_user(f"role.{role}", role) for role in ROLES}
    for name in ("author", "contributor", "decider"):
        users[name] = make_user(name, *AUTHOR_ROLES)
    return Api(client, auth_headers, users)


def test_every_workflow_with_a_signing_step_is_covered(app):
    """Every workflow that signs has a not_author step here, and a contribution for it."""
    registry = app.extensions["qms"].workflows
    signing = {name for name, workflow in registry.workflows.items()
               if any(t.signed for t in workflow.transitions)}
    assert {record_type for record_type, _, _ in CASES} == signing
    assert signing <= set(CONTRIBUTIONS)


@pytest.mark.parametrize(("record_type", "action", "source"), CASES,
                         ids=[f"{t}.{a}" for t, a, _ in CASES])
def test_a_contributor_is_an_author_a_signer_is_not(app, api, monkeypatch, record_type,
                                                   action, source):
    # the release gates are judged before the signature (409 first); this test is about who
    # signs, so a batch here needs only its input released (tests/release releases batches
    # that pass every gate, and refuses one to whoever reversed a consumption)
    monkeypatch.setitem(app.extensions, RELEASE_RULES, ReleaseRules(
        {"intermediate": ("inputs_released",), "finished": ("inputs_released",)}))
    transition = app.extensions["qms"].workflows.get(record_type).find(source, action)
    path = f"/{record_type_of(record_type).collection}/"
    number = FACTORIES[record_type](api)
    path += number
    state, contribute = CONTRIBUTIONS[record_type]
    _put_in_state(app, record_type, number, state)
    contribute(api, number)
    _put_in_state(app, record_type, number, source)
    decide = DECISIONS.get((record_type, source), lambda api, number, user: None)
    decide(api, number, "contributor")
    assert _authors(app, record_type, number) >= {"author", "contributor"}

    before = _state_and_version(app, record_type, number)
    version = before[1]
    refused = api.post("contributor", f"{path}/transitions",
                       _request(api.users["contributor"], action, transition.meaning, version))
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert "is an author of" in refused.get_json()["detail"]
    # the refusal is audited (qms.esign.service), the record is untouched
    assert before == _state_and_version(app, record_type, number)

    decide(api, number, "decider")
    assert "decider" not in _authors(app, record_type, number)
    version = _state_and_version(app, record_type, number)[1]
    decided = api.post("decider", f"{path}/transitions",
                       _request(api.users["decider"], action, transition.meaning, version))
    assert decided.status_code != 403, decided.get_json()
    if decided.status_code == 200:
        assert "decider" not in _authors(app, record_type, number)


def _authors(app, record_type: str, number: str) -> set[str]:
    with app.extensions["qms"].db.reading() as session:
        return authors_of(session, find_record(session, record_type_of(record_type), number))
