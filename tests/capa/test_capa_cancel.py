"""A deviation that requires a CAPA relies on it once it is pending closure or closed: the
last not cancelled CAPA of such a deviation cannot be cancelled (409, nothing changes), while
a CAPA of a deviation still in investigation, or one of two, can."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from qms.capa.models import CAPAS
from qms.identity.models import User
from qms.records.service import apply_transition, find_record

from tests.deviations.support import chain_verified

DEVIATION = {"title": "Granulator over temperature", "kind": "unplanned",
             "severity": "minor", "occurred_on": "2026-01-15",
             "description": "The granulator ran at 65 C for 12 minutes (limit 60 C)."}
INVESTIGATION = {"investigation": "Logs.", "root_cause": "Thermostat drift.",
                 "impact_assessment": "None.", "capa_required": True}


def investigated(api, team, **investigation) -> str:
    number = api.ok(api.post(team.production, "deviations", DEVIATION), 201)["number"]
    api.ok(api.transition(team.production, f"deviations/{number}", "submit_for_investigation"))
    api.ok(api.patch(team.reviewer, f"deviations/{number}",
                     {**INVESTIGATION, **investigation}, reason="done"))
    return number


def capa_for(api, team, deviation: str) -> str:
    return api.ok(api.post(team.reviewer, "capas", {
        "source": "deviation", "source_reference": deviation, "title": "Recalibrate",
        "problem_statement": "Drift.", "owner": team.production.username}), 201)["number"]


def cancel(api, team, capa: str):
    return api.transition(team.approver, f"capas/{capa}", "cancel", reason="not needed")


@pytest.mark.parametrize("deviation_state", ["pending_closure", "closed"])
def test_the_only_capa_of_a_deviation_relying_on_it_cannot_be_cancelled(
        api, team, db_snapshot, deviation_state):
    deviation = investigated(api, team)
    capa = capa_for(api, team, deviation)
    api.ok(api.transition(team.reviewer, f"deviations/{deviation}", "submit_for_closure"))
    if deviation_state == "closed":
        api.ok(api.transition(team.approver, f"deviations/{deviation}", "close",
                              meaning="approved"))
    api.headers(team.approver)
    before = db_snapshot()
    refused = cancel(api, team, capa)
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["deviation"] == deviation
    assert refused.get_json()["deviation_state"] == deviation_state
    assert db_snapshot() == before
    assert api.ok(api.get(team.auditor, f"capas/{capa}"))["state"] == "open"


def test_one_of_two_capas_can_be_cancelled_but_not_the_last(api, team, db_snapshot):
    deviation = investigated(api, team)
    first, second = capa_for(api, team, deviation), capa_for(api, team, deviation)
    api.ok(api.transition(team.reviewer, f"deviations/{deviation}", "submit_for_closure"))
    assert api.ok(cancel(api, team, first))["state"] == "cancelled"
    api.headers(team.approver)
    before = db_snapshot()
    assert cancel(api, team, second).status_code == 409
    assert db_snapshot() == before
    closed = api.ok(api.transition(team.approver, f"deviations/{deviation}", "close",
                                   meaning="approved"))
    assert closed["capas"] == [{"number": first, "state": "cancelled"},
                               {"number": second, "state": "open"}]
    chain_verified(api, team.auditor)


def test_a_capa_can_be_cancelled_while_its_deviation_does_not_rely_on_it(api, team):
    in_investigation = investigated(api, team)
    assert api.ok(cancel(api, team, capa_for(api, team, in_investigation)))["state"] == \
        "cancelled"
    not_required = investigated(api, team, capa_required=False)
    capa = capa_for(api, team, not_required)
    api.ok(api.transition(team.reviewer, f"deviations/{not_required}", "submit_for_closure"))
    assert api.ok(cancel(api, team, capa))["state"] == "cancelled"


def test_two_capas_cancelled_at_once_leave_one(app, api, team):
    """Two QA approvers cancel the two CAPAs of a deviation pending closure at the same
    moment: the second waits for the first (the deviation row lock; on SQLite the database
    write lock), then sees it and is refused. Without the lock each would see the other's
    CAPA still open and the deviation would be left with none."""
    deviation = investigated(api, team)
    first, second = capa_for(api, team, deviation), capa_for(api, team, deviation)
    api.ok(api.transition(team.reviewer, f"deviations/{deviation}", "submit_for_closure"))
    state = app.extensions["qms"]
    first_inside, outcomes = threading.Event(), {}

    def cancel_in_service(number: str, *, hold: bool) -> None:
        try:
            with state.db.unit_of_work() as session:
                capa = find_record(session, CAPAS, number, for_update=True)
                actor = session.scalar(select(User).where(User.username == "anna.approver"))
                apply_transition(session, state.security, state.workflows.get("capa"), capa,
                                 actor, "cancel", "not needed", None)
                if hold:
                    first_inside.set()
                    threading.Event().wait(0.5)  # hold the transaction open
            outcomes[number] = "cancelled"
        except Exception as error:  # noqa: BLE001  (reported below)
            outcomes[number] = type(error).__name__
        finally:
            first_inside.set()

    def second_canceller() -> None:
        first_inside.wait(10)
        cancel_in_service(second, hold=False)

    threads = [threading.Thread(target=cancel_in_service, args=(first,),
                                kwargs={"hold": True}),
               threading.Thread(target=second_canceller)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == {first: "cancelled", second: "Conflict"}
    assert api.ok(api.get(team.auditor, f"capas/{second}"))["state"] == "open"
