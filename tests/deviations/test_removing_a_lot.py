"""A lot or batch a deviation named by mistake is removed by QA with a reason: the naming
stays in the record beside its removal, the deviation gets a new version without it, and
the hold ends unless something else still holds the lot."""
from __future__ import annotations

from tests.deviations.support import (  # noqa: F401  (fixtures)
    api, audit_events, audit_head, chain_verified, stock, team)
from tests.deviations.test_deviations_api import lot_status, raise_deviation


def _remove(api, user, deviation: str, lot: str, reason: str | None = "named by mistake"):
    body = {"lot_number": lot} if reason is None else {"lot_number": lot, "reason": reason}
    return api.post(user, f"deviations/{deviation}/lots/removals", body)


def test_a_lot_named_by_mistake_is_removed_and_its_hold_ends(app, api, team, stock,
                                                             db_snapshot):
    deviation = raise_deviation(api, team.production, lots=[stock.lot, stock.other_lot],
                                batches=[stock.batch])["number"]
    assert lot_status(api, team.auditor, stock.other_lot) == "on_hold"
    other = raise_deviation(api, team.production, lots=[stock.lot])["number"]

    before = db_snapshot()
    for user, body, status in (
            (team.reviewer, {"lot_number": stock.other_lot, "reason": "x"}, 403),
            (team.approver, {"lot_number": "NOPE-1", "reason": "x"}, 422),
            (team.approver, {"lot_number": stock.other_lot, "reason": "  "}, 422),
            (team.approver, {"lot_number": stock.other_lot}, 422)):
        response = api.post(user, f"deviations/{deviation}/lots/removals", body)
        assert response.status_code == status, (body, response.get_json())
    assert db_snapshot() == before

    seq = audit_head(app)
    removed = api.ok(_remove(api, team.approver, deviation, stock.other_lot,
                             "wrong drum scanned"))
    assert removed["lots"] == [stock.lot] and removed["batches"] == [stock.batch]
    assert [(r["number"], r["removed_by"], r["reason"]) for r in removed["removed_lots"]] == [
        (stock.other_lot, "anna.approver", "wrong drum scanned")]
    assert lot_status(api, team.auditor, stock.other_lot) == "released"
    assert [(a, entity) for a, _, entity in audit_events(app, seq)] == [
        ("deviation.lot.removed", deviation), ("lot.hold.lifted", stock.other_lot)]

    # still named by the other open deviation: removed here, held there
    api.ok(_remove(api, team.approver, deviation, stock.lot))
    assert lot_status(api, team.auditor, stock.lot) == "on_hold"
    # a removed lot is not named again on the same deviation, nor removed twice
    again = api.post(team.production, f"deviations/{deviation}/lots",
                     {"lots": [stock.other_lot], "reason": "after all"})
    assert again.status_code == 422 and "new deviation" in again.get_json()["detail"]
    assert _remove(api, team.approver, deviation, stock.other_lot).status_code == 422
    assert other in {d["number"] for d in api.ok(api.get(team.auditor, "deviations"))}
    chain_verified(api, team.auditor)


def test_lots_are_removed_only_while_the_deviation_is_open(app, api, team, stock):
    deviation = raise_deviation(api, team.production, lots=[stock.other_lot])["number"]
    api.ok(api.transition(team.approver, f"deviations/{deviation}", "cancel",
                          reason="raised twice", meaning="approved"))
    late = _remove(api, team.approver, deviation, stock.other_lot)
    assert late.status_code == 409
