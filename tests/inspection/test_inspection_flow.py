"""Incoming inspection end to end over HTTP: a lot received opens its inspection with the AQL
sample size, results are judged as recorded, a correction keeps the original, the inspector
performs, QA decides, and the decision releases or rejects the lot."""
from __future__ import annotations

from datetime import date, timedelta

from tests.inspection.conftest import SUPPLIER


def test_incoming_inspection_accepts_and_rejects_lots(master_data, team, audit_seq,
                                                      audit_since, db_snapshot, chain_intact):
    api = master_data
    plan = api.effective_plan()
    lot = api.receive("60")["number"]
    inspection = api.inspection_of_lot(lot)
    number = inspection["number"]
    assert number.startswith("INS-") and inspection["state"] == "open"
    assert (inspection["plan"], inspection["plan_revision"], inspection["stage"],
            inspection["supplier"]) == (plan["number"], 1, "incoming", SUPPLIER)
    # 60 pieces, level II -> E; AQL 1.0 at E -> n = 13, Ac 0, Re 1
    assert (inspection["lot_size"], inspection["code_letter"], inspection["sample_size"],
            inspection["accept_number"], inspection["reject_number"]) == (60, "E", 13, 0, 1)
    assert inspection["created_by"] == "paul.production"

    # QA cannot dispose of the lot by hand while it is under inspection
    before = db_snapshot()
    manual = api.transition(team.approver, f"/lots/{lot}", "release", meaning="released")
    assert manual.status_code == 409 and number in manual.get_json()["detail"]
    assert db_snapshot() == before

    start = audit_seq()
    recorded = api.record_all(number, 13, bad={4: "10.15"})
    assert recorded["state"] == "in_progress"
    by_id = {r["id"]: r for r in recorded["results"]}
    assert by_id[4]["conforming"] is False and by_id[4]["value"] == "10.15"
    assert by_id[5]["conforming"] is True and by_id[14]["passed"] is True
    assert recorded["summary"]["nonconforming_results"] == 1
    assert recorded["summary"]["sampling_verdict"] == "reject"

    corrected = api.ok(api.results(team.inspector, number, [
        {"characteristic": "DIA", "value": "10.02", "corrects": 5,
         "reason": "transcription error, instrument shows 10.02"}]), 201)
    results = {r["id"]: r for r in corrected["results"]}
    assert results[5]["superseded_by"] == 27 and results[5]["value"] == "10.01"
    assert (results[27]["corrects"], results[27]["sample"], results[27]["value"]) == \
        (5, 5, "10.02")
    assert corrected["summary"]["characteristics"][0] == {
        "code": "DIA", "required": 13, "recorded": 13, "nonconforming": 1}
    events = [(a, reason) for a, _, entity, reason in audit_since(start) if entity == number]
    assert events == [("inspection.result.recorded", None),
                      ("inspection.result.corrected",
                       "transcription error, instrument shows 10.02")]

    api.complete(number)
    no_reason = api.transition(team.approver, f"/inspections/{number}", "accept",
                               meaning="approved")
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    accepted = api.ok(api.transition(team.approver, f"/inspections/{number}", "accept",
                                     meaning="approved",
                                     reason="one part over USL, sorted out; rest within"))
    assert accepted["state"] == "accepted" and accepted["usage_decision"] == "A"
    assert [s["meaning"] for s in accepted["signatures"]] == ["performed", "approved"]
    released = api.ok(api.get(team.auditor, f"/lots/{lot}"))
    assert released["status"] == "released"
    lot_events = [(a, actor) for a, actor, entity, _ in audit_since(start) if entity == lot]
    assert lot_events == [("lot.status.decided", "anna.approver")]

    # a second lot: all conforming, rejected by QA anyway (reason required)
    second = api.receive("60")["number"]
    second_number = api.inspection_of_lot(second)["number"]
    api.record_all(second_number, 13)
    api.complete(second_number)
    path = f"/inspections/{second_number}"
    assert api.transition(team.approver, path, "reject", meaning="rejected").status_code == 422
    rejected = api.ok(api.transition(team.approver, path, "reject", meaning="rejected",
                                     reason="certificate of analysis missing"))
    assert rejected["usage_decision"] == "R"
    assert api.ok(api.get(team.auditor, f"/lots/{second}"))["status"] == "rejected"

    # a third lot stays open; the scorecard counts all three
    api.receive("20")
    today = date.today()
    card = api.ok(api.get(team.auditor, f"/suppliers/{SUPPLIER}/scorecard",
                          **{"from": (today - timedelta(days=1)).isoformat(),
                             "to": (today + timedelta(days=1)).isoformat()}))
    assert (card["accepted"], card["rejected"], card["open"], card["decided"],
            card["acceptance_rate"]) == (1, 1, 1, 2, "0.5000")
    earlier = api.ok(api.get(team.auditor, f"/suppliers/{SUPPLIER}/scorecard",
                             **{"from": "2020-01-01", "to": "2020-12-31"}))
    assert (earlier["decided"], earlier["open"], earlier["acceptance_rate"]) == (0, 0, None)

    history = api.ok(api.get(team.auditor, f"/inspections/{number}/history"))
    assert [v["action"] for v in history["versions"]] == [
        "create", "record_results", "correct_result", "complete", "accept"]
    assert all(s["verified"] for s in history["signatures"])
    assert chain_intact()


def test_results_are_checked_before_anything_is_written(master_data, team, db_snapshot):
    api = master_data
    api.effective_plan()
    number = api.inspection_of_lot(api.receive("60")["number"])["number"]
    api.ok(api.results(team.inspector, number, [{"characteristic": "DIA", "value": "10.00"}]),
           201)
    before = db_snapshot()
    cases = [
        ([{"characteristic": "DIA", "value": 10.0}], "results.0.value"),
        ([{"characteristic": "DIA", "value": "10.001"}], "results.0.value"),
        ([{"characteristic": "DIA", "passed": True}], "results.0.passed"),
        ([{"characteristic": "VIS", "value": "1"}], "results.0.value"),
        ([{"characteristic": "VIS", "passed": "yes"}], "results.0.passed"),
        ([{"characteristic": "XYZ", "value": "1"}], "results.0.characteristic"),
        ([{"characteristic": "DIA", "value": "10.00", "sample": 14}], "results.0.sample"),
        ([{"characteristic": "DIA", "value": "10.00", "sample": 1}], "results.0.sample"),
        ([{"characteristic": "DIA", "value": "10.00", "reason": "why"}], "results.0.reason"),
        ([{"characteristic": "DIA", "value": "10.00"},
          {"characteristic": "DIA", "value": "10.00", "corrects": 1}], "results.1.reason"),
        ([{"characteristic": "DIA", "value": "10.00", "corrects": 9, "reason": "typo"}],
         "results.0.corrects"),
        ([{"characteristic": "VIS", "passed": True, "corrects": 1, "reason": "typo"}],
         "results.0.characteristic"),
        ([], "results"),
    ]
    for entries, field in cases:
        response = api.results(team.inspector, number, entries)
        assert response.status_code == 422, (entries, response.get_json())
        assert field in response.get_json()["errors"], (entries, response.get_json())
    assert api.results(team.approver, number, [{"characteristic": "DIA", "value": "10.00"}]
                       ).status_code == 403
    incomplete = api.transition(team.inspector, f"/inspections/{number}", "complete",
                                meaning="performed")
    assert incomplete.status_code == 409
    assert incomplete.get_json()["missing"] == {"DIA": 12, "VIS": 13}
    assert db_snapshot() == before


def test_the_inspector_who_performed_cannot_decide(master_data, team, make_user,
                                                   record_counts, audit_seq, audit_since):
    dual = make_user("dora.dual", "inspector", "qa_approver")
    api = master_data
    api.effective_plan()
    number = api.inspection_of_lot(api.receive("5")["number"])["number"]
    # 5 pieces, level II -> A, AQL 1.0 -> E (n = 13) > 5: every piece
    api.record_all(number, 5)
    api.complete(number, dual)
    counts, start = record_counts(), audit_seq()
    refused = api.transition(dual, f"/inspections/{number}", "accept", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert [a for a, *_ in audit_since(start)] == ["signature.refused"]
    assert record_counts() == counts
    # nor can whoever opened the inspection lot (here: by receiving the lot)
    opener = make_user("olga.opener", "production", "qa_approver")
    lot = api.ok(api.post(opener, "/lots", {"material": "RM-PART", "supplier": SUPPLIER,
                                            "quantity": "5", "unit": "pcs"}), 201)["number"]
    other = api.inspection_of_lot(lot)["number"]
    api.record_all(other, 5)
    api.complete(other)
    assert api.transition(opener, f"/inspections/{other}", "accept",
                          meaning="approved").status_code == 403
    assert api.transition(team.approver, f"/inspections/{other}", "accept",
                          meaning="approved").status_code == 200


def test_a_rejection_can_raise_a_deviation_that_holds_the_lot(master_data, team):
    api = master_data
    api.effective_plan()
    lot = api.receive("5")["number"]
    number = api.inspection_of_lot(lot)["number"]
    path = f"/inspections/{number}/deviation"
    api.record_all(number, 5)
    body = {"description": "Cracks found", "severity": "major"}
    assert api.post(team.approver, path, body).status_code == 409  # nothing nonconforming
    api.complete(number)
    api.ok(api.transition(team.approver, f"/inspections/{number}", "reject",
                          meaning="rejected", reason="supplier sent the wrong drawing issue"))
    assert api.post(team.approver, path, {"severity": "major"}).status_code == 422
    raised = api.ok(api.post(team.approver, path, body), 201)
    deviation = raised["deviation"]
    assert raised["inspection"]["deviation"] == deviation
    assert api.ok(api.get(team.auditor, f"/deviations/{deviation}"))["lots"] == [lot]
    assert api.ok(api.get(team.auditor, f"/lots/{lot}"))["status"] == "on_hold"
    assert api.post(team.approver, path, body).status_code == 409


def test_lot_size_in_kg_containers_and_cancellation(master_data, team, db_snapshot):
    api = master_data
    api.ok(api.post(team.reviewer, "/materials", {"code": "RM-KG", "name": "Powder",
                                                  "kind": "raw", "unit": "kg",
                                                  "shelf_life_days": 365}), 201)
    api.effective_plan(material="RM-KG")
    lot = api.ok(api.post(team.production, "/lots", {"material": "RM-KG", "supplier": SUPPLIER,
                                                     "quantity": "250.5", "unit": "kg"}), 201)
    automatic = api.inspection_of_lot(lot["number"])
    # 250.5 kg -> 251 units; level II -> G; AQL 1.0 at G -> down to H: n = 50, Ac 1
    assert (automatic["lot_size"], automatic["code_letter"], automatic["sample_size"],
            automatic["accept_number"]) == (251, "G", 50, 1)
    path = f"/inspections/{automatic['number']}"
    assert api.transition(team.inspector, path, "cancel", reason="wrong").status_code == 403
    assert api.transition(team.approver, path, "cancel").status_code == 422
    api.ok(api.transition(team.approver, path, "cancel", reason="sampled by containers"))

    # opened by hand with the number of containers as the lot size: 12 -> B, down to E
    # (n = 13) > 12: every container
    body = {"stage": "incoming", "lot_number": lot["number"], "lot_size": 12}
    reopened = api.ok(api.post(team.reviewer, "/inspections", body), 201)
    assert (reopened["lot_size"], reopened["sample_size"], reopened["code_letter"]) == \
        (12, 12, "B")
    before = db_snapshot()
    assert api.post(team.reviewer, "/inspections", body).status_code == 409
    assert api.post(team.reviewer, "/inspections", {**body, "lot_size": 0}).status_code == 422
    assert api.post(team.reviewer, "/inspections", {**body, "lot_number": "NO-LOT"}
                    ).status_code == 422
    assert db_snapshot() == before
    api.ok(api.transition(team.approver, f"/inspections/{reopened['number']}", "cancel",
                          reason="released on certificate by QA decision"))
    released = api.ok(api.transition(team.approver, f"/lots/{lot['number']}", "release",
                                     meaning="released"))
    assert released["status"] == "released"
    assert api.post(team.reviewer, "/inspections", body).status_code == 409  # not quarantined
