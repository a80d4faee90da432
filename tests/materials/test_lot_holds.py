"""Status changes that follow from other records: holds (deviations), decisions (incoming
usage decisions) and the expiry job, each a new version with an audit event."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from qms.errors import Conflict
from qms.materials.holds import expire_lots, lift_hold, put_on_hold, set_lot_status
from qms.materials.models import Lot


def _lot(session, number: str) -> Lot:
    return session.scalar(select(Lot).where(Lot.number == number))


def test_a_hold_remembers_and_restores_the_status(basics, uow, audit_events, team):
    m = basics
    number = m.received()
    seq = len(audit_events())
    with uow() as session:
        lot = _lot(session, number)
        put_on_hold(session, lot, "rita.reviewer", because="DEV-2026-00001 names the lot")
        put_on_hold(session, lot, "rita.reviewer", because="DEV-2026-00002 names it too")
        assert (lot.state, lot.status_before_hold, lot.version) == ("on_hold", "released", 3)
    held = m.ok(m.get(team.auditor, f"/lots/{number}"))
    assert (held["status"], held["status_before_hold"]) == ("on_hold", "released")
    assert held["transitions"] == []  # a held lot is not released or rejected by hand
    with uow() as session:
        lift_hold(session, _lot(session, number), "anna.approver",
                  because="DEV-2026-00001 closed")
        lift_hold(session, _lot(session, number), "anna.approver", because="no-op")
    lot = m.ok(m.get(team.auditor, f"/lots/{number}"))
    assert (lot["status"], lot["status_before_hold"], lot["version"]) == ("released", None, 4)
    assert audit_events()[seq:] == [
        ("lot.hold.placed", "rita.reviewer", number, "DEV-2026-00001 names the lot"),
        ("lot.hold.lifted", "anna.approver", number, "DEV-2026-00001 closed")]
    history = m.ok(m.get(team.auditor, f"/lots/{number}/history"))
    assert [(v["action"], v["state"]) for v in history["versions"][-2:]] == [
        ("hold", "on_hold"), ("unhold", "released")]


def test_a_decision_on_a_held_lot_applies_when_the_hold_lifts(basics, uow):
    number = basics.received(release=False)
    with uow() as session:
        lot = _lot(session, number)
        put_on_hold(session, lot, "rita.reviewer", because="DEV-1")
        set_lot_status(session, lot, "anna.approver", "released", because="INS-1 accepted",
                       details={"inspection": "INS-1"})
        assert (lot.state, lot.status_before_hold) == ("on_hold", "released")
        lift_hold(session, lot, "anna.approver", because="DEV-1 closed")
        assert lot.state == "released"
        set_lot_status(session, lot, "anna.approver", "rejected", because="complaint")
        assert lot.state == "rejected"
        with pytest.raises(Conflict, match="is rejected; it cannot become released"):
            set_lot_status(session, lot, "anna.approver", "released", because="again")


def test_a_hold_that_outlasts_the_expiry_date_returns_the_lot_expired(basics, uow):
    number = basics.received()
    with uow() as session:
        lot = _lot(session, number)
        put_on_hold(session, lot, "rita.reviewer", because="DEV-1")
        after = lot.expires_on + timedelta(days=1)
        assert expire_lots(session, after) == []  # held lots stay held
        lift_hold(session, lot, "anna.approver", because="DEV-1 closed", today=after)
        assert (lot.state, lot.status_before_hold) == ("expired", None)


def test_the_expiry_job_expires_quarantined_and_released_lots(basics, uow, audit_events,
                                                              team):
    m = basics
    released, quarantined = m.received(), m.received(release=False)
    rejected = m.received(release=False)
    m.ok(m.transition(team.approver, f"/lots/{rejected}", "reject", meaning="rejected",
                      reason="damaged drums"))
    short = m.received(expires_on=(date.today() + timedelta(days=400)).isoformat())
    seq = len(audit_events())
    with uow() as session:
        expiry = _lot(session, released).expires_on
        assert expire_lots(session, expiry) == []  # in date on its expiry day
        assert expire_lots(session, expiry + timedelta(days=1)) == sorted(
            [released, quarantined])
    assert [(e[0], e[1], e[2]) for e in audit_events()[seq:]] == [
        ("lot.status.expired", "system", n) for n in sorted([released, quarantined])]
    statuses = {n: m.ok(m.get(team.auditor, f"/lots/{n}"))["status"]
                for n in (released, quarantined, rejected, short)}
    assert statuses == {released: "expired", quarantined: "expired", rejected: "rejected",
                        short: "released"}


def test_release_after_the_expiry_date_is_refused(basics, uow):
    m = basics
    number = m.received(release=False, received_on=(date.today() - timedelta(days=5))
                        .isoformat(), expires_on=date.today().isoformat())
    with uow() as session:
        lot = _lot(session, number)
        with pytest.raises(Conflict, match="expired on"):
            set_lot_status(session, lot, "anna.approver", "released", because="accepted",
                           today=date.today() + timedelta(days=1))
    assert m.release(number)["status"] == "released"  # the expiry day itself is in date
