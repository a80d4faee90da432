"""Controlled documents end to end over HTTP: numbering, versions, the workflow with real
signatures, history, and requests that must change nothing."""
from __future__ import annotations

import re

NUMBER = re.compile(r"^DOC-\d{4}-\d{5}$")


def test_document_lifecycle_with_signatures(documents, team, audit_seq, audit_since,
                                           chain_intact):
    start = audit_seq()
    created = documents.create(team.author, effective_date="2026-07-01")
    assert created.status_code == 201
    doc = created.get_json()
    number = doc["number"]
    assert NUMBER.match(number) and number.endswith("-00001")
    assert (doc["state"], doc["version"], doc["created_by"]) == ("draft", 1, "paul.author")
    assert doc["effective_date"] == "2026-07-01" and doc["signatures"] == []
    assert {t["action"]: t["allowed"] for t in doc["transitions"]} == {"submit": True,
                                                                       "cancel": True}

    edited = documents.patch(team.author, number, {"summary": "Wet clean, then dry."},
                             reason="clarify the procedure", version=1)
    assert edited.status_code == 200 and edited.get_json()["version"] == 2

    in_review = documents.to_state(team, number, "in_review")
    assert (in_review["state"], in_review["version"]) == ("in_review", 3)
    reviewed = documents.transition(team.reviewer, number, "review", meaning="reviewed")
    assert reviewed.status_code == 200, reviewed.get_json()
    body = reviewed.get_json()
    assert (body["state"], body["version"]) == ("reviewed", 4)
    review = body["signatures"][0]
    assert (review["signer"], review["name"], review["meaning"], review["record_version"]) == \
        ("rita.reviewer", "Rita.Reviewer", "reviewed", 4)
    assert review["manifestation"]["at"].endswith("+00:00")
    assert review["valid_for_current_version"] is True

    approved = documents.transition(team.approver, number, "approve", meaning="approved")
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["state"] == "effective"
    assert [t["action"] for t in approved.get_json()["transitions"]] == ["retire"]

    retired = documents.transition(team.approver, number, "retire", meaning="approved",
                                   reason="superseded by DOC-2026-00099")
    assert retired.status_code == 200, retired.get_json()
    final = retired.get_json()
    assert (final["state"], final["version"], final["transitions"]) == ("obsolete", 6, [])
    assert [s["meaning"] for s in final["signatures"]] == ["reviewed", "approved", "approved"]
    assert not final["changed_since_signing"]

    history = documents.history(team.auditor, number).get_json()
    assert [(v["version"], v["action"], v["state"]) for v in history["versions"]] == [
        (1, "create", "draft"), (2, "update", "draft"), (3, "submit", "in_review"),
        (4, "review", "reviewed"), (5, "approve", "effective"), (6, "retire", "obsolete")]
    assert history["versions"][1]["changes"] == {
        "summary": {"before": "How line 3 is cleaned.", "after": "Wet clean, then dry."}}
    assert history["versions"][1]["reason"] == "clarify the procedure"
    assert history["versions"][4]["changes"] == {"state": {"before": "reviewed",
                                                           "after": "effective"}}
    assert all(s["verified"] and s["valid_for_current_version"] for s in history["signatures"])

    events = audit_since(start)
    document_events = [(a, actor) for a, actor, entity in events if entity == number]
    assert document_events == [
        ("document.record.created", "paul.author"), ("document.record.updated", "paul.author"),
        ("document.record.transitioned", "paul.author"),
        ("signature.applied", "rita.reviewer"), ("document.record.transitioned", "rita.reviewer"),
        ("signature.applied", "anna.approver"), ("document.record.transitioned", "anna.approver"),
        ("signature.applied", "anna.approver"), ("document.record.transitioned", "anna.approver")]
    assert chain_intact()


def test_record_events_carry_version_before_and_after(app, documents, team, audit_seq):
    number = documents.create_number(team.author)
    documents.patch(team.author, number, {"title": "Cleaning of line 4"}, reason="line renamed")
    auditor = documents.headers(team.auditor)
    events = documents.client.get(f"/api/v1/audit/events?entity_type=document&entity_id={number}",
                                  headers=auditor).get_json()["events"]
    created, updated = events
    assert created["data"]["version"] == 1 and created["data"]["before"] == {}
    assert created["data"]["after"]["state"] == "draft"
    assert updated["data"] == {"version": 2, "before": {"title": "Cleaning of line 3"},
                               "after": {"title": "Cleaning of line 4"}}
    assert updated["reason"] == "line renamed"


def test_numbers_are_sequential_per_prefix(documents, team):
    first = documents.create_number(team.author)
    refused = documents.create(team.author, doc_type="memo")
    assert refused.status_code == 422 and "doc_type" in refused.get_json()["errors"]
    second = documents.create_number(team.author)
    assert int(second[-5:]) == int(first[-5:]) + 1


def test_list_and_filter(documents, team):
    first = documents.create_number(team.author)
    second = documents.create_number(team.author, doc_type="form")
    documents.to_state(team, first, "in_review")
    headers = documents.headers(team.auditor)
    listed = documents.client.get("/api/v1/documents", headers=headers).get_json()
    assert [d["number"] for d in listed] == [second, first]
    drafts = documents.client.get("/api/v1/documents?state=draft", headers=headers).get_json()
    assert [d["number"] for d in drafts] == [second]
    forms = documents.client.get("/api/v1/documents?doc_type=form", headers=headers).get_json()
    assert [d["number"] for d in forms] == [second]


def test_patch_without_reason_is_refused_and_writes_nothing(documents, team, db_snapshot):
    number = documents.create_number(team.author)
    documents.headers(team.author)
    before = db_snapshot()
    for reason in (None, "   "):
        refused = documents.patch(team.author, number, {"title": "New title"}, reason=reason)
        assert refused.status_code == 422
        assert "reason" in refused.get_json()["errors"]
    assert db_snapshot() == before
    assert documents.get(team.author, number).get_json()["title"] == "Cleaning of line 3"


def test_invalid_edits_change_nothing(documents, team, db_snapshot):
    number = documents.create_number(team.author)
    documents.headers(team.auditor)
    before = db_snapshot()
    no_op = documents.patch(team.author, number, {"title": "Cleaning of line 3"}, reason="x")
    assert no_op.status_code == 422 and "changes" in no_op.get_json()["errors"]
    read_only = documents.patch(team.author, number, {"state": "effective"}, reason="x")
    assert read_only.status_code == 422 and "changes.state" in read_only.get_json()["errors"]
    empty_title = documents.patch(team.author, number, {"title": ""}, reason="x")
    assert empty_title.status_code == 422 and "changes.title" in empty_title.get_json()["errors"]
    stale = documents.patch(team.author, number, {"title": "T"}, reason="x", version=7)
    assert stale.status_code == 409
    not_permitted = documents.patch(team.auditor, number, {"title": "T"}, reason="x")
    assert not_permitted.status_code == 403
    missing = documents.patch(team.author, "DOC-1999-00001", {"title": "T"}, reason="x")
    assert missing.status_code == 404
    assert db_snapshot() == before


def test_edits_only_in_editable_states(documents, team, db_snapshot):
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    before = db_snapshot()
    refused = documents.patch(team.author, number, {"title": "Late change"}, reason="typo")
    assert refused.status_code == 409 and "edited only in draft" in refused.get_json()["detail"]
    assert db_snapshot() == before


def test_invalid_transitions_change_nothing(documents, team, db_snapshot):
    number = documents.create_number(team.author)
    for user in (team.author, team.reviewer, team.approver):
        documents.headers(user)
    before = db_snapshot()
    not_open = documents.transition(team.approver, number, "approve", meaning="approved")
    assert not_open.status_code == 409
    assert not_open.get_json()["open_actions"] == ["submit", "cancel"]
    assert "open actions: submit, cancel" in not_open.get_json()["detail"]
    no_permission = documents.transition(team.reviewer, number, "cancel", reason="duplicate")
    assert no_permission.status_code == 403
    no_reason = documents.transition(team.author, number, "cancel")
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    signature_not_wanted = documents.transition(team.author, number, "submit",
                                                meaning="performed")
    assert signature_not_wanted.status_code == 422
    stale = documents.transition(team.author, number, "submit", version=9)
    assert stale.status_code == 409 and stale.get_json()["version"] == 1
    unknown = documents.transition(team.author, "DOC-1999-00042", "submit")
    assert unknown.status_code == 404
    assert db_snapshot() == before


def test_signed_transition_needs_a_signature(documents, team, db_snapshot):
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    documents.headers(team.reviewer)
    before = db_snapshot()
    unsigned = documents.transition(team.reviewer, number, "review")
    assert unsigned.status_code == 422 and "signature" in unsigned.get_json()["errors"]
    incomplete = documents.client.post(
        f"/api/v1/documents/{number}/transitions", headers=documents.headers(team.reviewer),
        json={"action": "review", "signature": {"username": "rita.reviewer",
                                                "meaning": "reviewed"}})
    assert incomplete.status_code == 422
    assert "signature.password" in incomplete.get_json()["errors"]
    assert db_snapshot() == before


def test_a_signer_names_the_version_they_saw(documents, team, db_snapshot):
    """Issue 9, point 3: a signed transition names the version the signer saw: 422 naming
    ``version`` when it does not, 409 (with the current version) when the record moved on
    since; either way nothing is written and nothing is signed."""
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    documents.headers(team.reviewer)
    before = db_snapshot()
    signature = {"username": team.reviewer.username, "password": team.reviewer.password,
                 "meaning": "reviewed"}
    for unnamed in ({"action": "review", "signature": signature},
                    {"action": "review", "signature": signature, "version": None}):
        response = documents.client.post(f"/api/v1/documents/{number}/transitions",
                                         headers=documents.headers(team.reviewer), json=unnamed)
        assert response.status_code == 422, response.get_json()
        assert list(response.get_json()["errors"]) == ["version"]
    moved_on = documents.transition(team.reviewer, number, "review", meaning="reviewed",
                                    version=1)
    assert moved_on.status_code == 409 and moved_on.get_json()["version"] == 2
    assert db_snapshot() == before
    seen = documents.transition(team.reviewer, number, "review", meaning="reviewed",
                                version=2)
    assert seen.status_code == 200
    assert seen.get_json()["signatures"][0]["record_version"] == 3


def test_return_and_cancel(documents, team):
    number = documents.create_number(team.author)
    documents.to_state(team, number, "reviewed")
    returned = documents.transition(team.approver, number, "return", reason="add a figure")
    assert returned.status_code == 200 and returned.get_json()["state"] == "draft"
    cancelled = documents.transition(team.author, number, "cancel", reason="not needed")
    assert cancelled.status_code == 200
    assert (cancelled.get_json()["state"], cancelled.get_json()["transitions"]) == \
        ("cancelled", [])


def test_every_record_type_has_its_generic_routes(documents, team):
    from qms.records.models import all_record_types

    spec = documents.client.get("/api/v1/openapi.json",
                                headers=documents.headers(team.auditor)).get_json()
    for record_type in all_record_types():
        base = f"/api/v1/{record_type.collection}/{{number}}"
        assert {"get"} <= set(spec["paths"][base])
        assert "post" in spec["paths"][base + "/transitions"]
        assert "get" in spec["paths"][base + "/history"]

