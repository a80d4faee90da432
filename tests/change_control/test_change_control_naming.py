"""approved_change_naming: what the inspection module asks before a new version of an
effective plan is approved."""
from __future__ import annotations

from qms.change_control.service import approved_change_naming, change_controls_naming
from tests.change_control.conftest import MATERIAL, OTHER_MATERIAL


def test_approved_change_naming_only_once_approved(app, changes, team, master_data):
    def named(number: str = MATERIAL):
        with app.app_context(), app.extensions["qms"].db.reading() as session:
            found = approved_change_naming(session, "material", number)
            listed = [r.number for r in change_controls_naming(session, "material", number)]
            return (found.number if found else None), listed

    number = changes.create_number(team.raiser, risk="medium")
    assert named() == (None, [number])
    changes.ok(team.raiser, number, "submit")
    changes.ok(team.qa1, number, "approve", meaning="approved")
    assert named() == (None, [number])  # approvals still missing
    changes.ok(team.prod, number, "approve", meaning="approved")
    assert named() == (number, [number])
    assert named(OTHER_MATERIAL) == (None, [])
    with app.app_context(), app.extensions["qms"].db.reading() as session:
        assert approved_change_naming(session, "supplier", MATERIAL) is None

    changes.post(team.prod, number, "/implementation", {"notes": "done", "reason": "done"})
    changes.ok(team.prod, number, "implement", meaning="performed")
    assert named() == (number, [number])  # still authorising until verified
    changes.post(team.qa2, number, "/verification", {"result": "effective", "reason": "ok"})
    changes.ok(team.qa2, number, "verify", meaning="verified")
    assert named() == (None, [number])


def test_a_rejected_change_authorises_nothing(app, changes, team, master_data):
    number = changes.submitted(team.raiser)
    changes.ok(team.qa1, number, "reject", meaning="rejected", reason="not needed")
    with app.app_context(), app.extensions["qms"].db.reading() as session:
        assert approved_change_naming(session, "material", MATERIAL) is None
