"""Bad input is refused with 422 naming the field and writes nothing; impacted items are
checked to exist when added, and edited only in draft, each change a new version."""
from __future__ import annotations

import pytest

from tests.change_control.conftest import MATERIAL, OTHER_MATERIAL, SUPPLIER


MISSING = object()


@pytest.mark.parametrize("fields, field", [
    ({"title": MISSING}, "title"),
    ({"risk": MISSING}, "risk"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 20001}, "description"),
    ({"justification": "x" * 20001}, "justification"),
    ({"risk": "critical"}, "risk"),
    ({"risk": 3}, "risk"),
    ({"change_type": "recipe"}, "change_type"),
    ({"impacted_items": [{"kind": "material", "number": "RM-NOPE-999"}]},
     "impacted_items.0.number"),
    ({"impacted_items": [{"kind": "material", "number": MATERIAL},
                         {"kind": "supplier", "number": "SUP-NOPE"}]},
     "impacted_items.1.number"),
    ({"impacted_items": [{"kind": "lot", "number": MATERIAL}]}, "impacted_items.0.kind"),
    ({"impacted_items": [{"kind": "material"}]}, "impacted_items.0.number"),
    ({"impacted_items": [{"kind": "material", "number": "x" * 41}]},
     "impacted_items.0.number"),
    ({"impacted_items": [{"kind": "material", "number": MATERIAL},
                         {"kind": "material", "number": MATERIAL}]},
     "impacted_items.1.number"),
    # whether or not the inspection module is installed, an unknown plan is refused
    ({"impacted_items": [{"kind": "inspection_plan", "number": "IP-1999-00001"}]},
     "impacted_items.0.number"),
    ({"surprise": True}, "surprise"),
])
def test_bad_change_controls_are_refused(changes, team, master_data, db_snapshot, fields,
                                         field):
    changes.headers(team.raiser)
    before = db_snapshot()
    response = changes.create(team.raiser, **fields, drop=[k for k, v in fields.items()
                                                           if v is MISSING])
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert db_snapshot() == before


def test_items_of_every_kind_are_checked_to_exist(changes, team, master_data):
    document = changes.client.post("/api/v1/documents", headers=changes.headers(team.raiser),
                                   json={"title": "Assay specification",
                                         "doc_type": "specification"}).get_json()["number"]
    items = [{"kind": "material", "number": MATERIAL},
             {"kind": "supplier", "number": SUPPLIER},
             {"kind": "document", "number": document}]
    record = changes.create(team.raiser, impacted_items=items).get_json()
    assert record["impacted_items"] == items


def test_impacted_items_are_edited_in_draft_only(changes, team, master_data, db_snapshot):
    number = changes.create_number(team.raiser)
    path = "/impacted-items"
    added = changes.post(team.raiser, number, path, {"kind": "material",
                                                     "number": OTHER_MATERIAL,
                                                     "reason": "bottles change too"})
    assert added.status_code == 201, added.get_json()
    assert (added.get_json()["version"], added.get_json()["impacted_items"]) == (2, [
        {"kind": "material", "number": MATERIAL},
        {"kind": "material", "number": OTHER_MATERIAL}])

    before = db_snapshot()
    for body, status, field in (
            ({"kind": "material", "number": "RM-NOPE", "reason": "r"}, 422, "number"),
            ({"kind": "material", "number": OTHER_MATERIAL}, 422, "reason"),
            ({"kind": "batch", "number": MATERIAL, "reason": "r"}, 422, "kind"),
            ({"kind": "material", "number": OTHER_MATERIAL, "reason": "r"}, 409, None),
            ({"kind": "material", "number": MATERIAL, "reason": "r", "version": 1}, 409, None)):
        refused = changes.post(team.raiser, number, path, body)
        assert refused.status_code == status, (body, refused.get_json())
        if field:
            assert field in refused.get_json()["errors"]
    not_named = changes.client.delete(
        f"/api/v1/change-controls/{number}/impacted-items/supplier/{SUPPLIER}",
        json={"reason": "r"}, headers=changes.headers(team.raiser))
    assert not_named.status_code == 404
    assert db_snapshot() == before

    removed = changes.client.delete(
        f"/api/v1/change-controls/{number}/impacted-items/material/{MATERIAL}",
        json={"reason": "the API itself is unchanged"}, headers=changes.headers(team.raiser))
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["impacted_items"] == [{"kind": "material",
                                                     "number": OTHER_MATERIAL}]
    history = changes.client.get(f"/api/v1/change-controls/{number}/history",
                                 headers=changes.headers(team.raiser)).get_json()
    assert [(v["action"], v["reason"]) for v in history["versions"]] == [
        ("create", None), ("update", "bottles change too"),
        ("update", "the API itself is unchanged")]
    assert history["versions"][2]["changes"]["impacted_items"]["after"] == \
        [{"kind": "material", "number": OTHER_MATERIAL}]

    changes.ok(team.raiser, number, "submit")
    before = db_snapshot()
    late = changes.post(team.raiser, number, path, {"kind": "material", "number": MATERIAL,
                                                    "reason": "forgot it"})
    assert late.status_code == 409
    risk_change = changes.client.patch(f"/api/v1/change-controls/{number}",
                                       json={"changes": {"risk": "low"}, "reason": "r"},
                                       headers=changes.headers(team.raiser))
    assert risk_change.status_code == 409
    assert db_snapshot() == before


def test_patch_edits_own_fields_with_a_reason(changes, team, master_data, db_snapshot):
    number = changes.create_number(team.raiser)
    url = f"/api/v1/change-controls/{number}"
    headers = changes.headers(team.raiser)
    before = db_snapshot()
    for body, field in (({"changes": {"risk": "high"}}, "reason"),
                        ({"changes": {"risk": "severe"}, "reason": "r"}, "changes.risk"),
                        ({"changes": {"impacted_items": []}, "reason": "r"},
                         "changes.impacted_items"),
                        ({"changes": {"title": "x" * 201}, "reason": "r"}, "changes.title")):
        refused = changes.client.patch(url, json=body, headers=headers)
        assert refused.status_code == 422 and field in refused.get_json()["errors"], \
            refused.get_json()
    assert db_snapshot() == before
    edited = changes.client.patch(url, json={"changes": {"risk": "high"},
                                             "reason": "affects sterile filling"},
                                  headers=headers).get_json()
    assert (edited["risk"], edited["version"]) == ("high", 2)
    assert [s["slot"] for s in edited["approvals_required"]] == ["qa_1", "qa_2", "production"]


def test_implementation_and_verification_input(changes, team, master_data, db_snapshot):
    number = changes.submitted(team.raiser)
    changes.ok(team.qa1, number, "approve", meaning="approved")
    changes.headers(team.prod), changes.headers(team.inspector)
    before = db_snapshot()
    for body, field in (({"reason": "r"}, "notes"), ({"notes": "", "reason": "r"}, "notes"),
                        ({"notes": "done"}, "reason"), ({"notes": "done", "reason": " "},
                                                        "reason")):
        refused = changes.post(team.prod, number, "/implementation", body)
        assert refused.status_code == 422 and field in refused.get_json()["errors"], body
    assert changes.post(team.inspector, number, "/implementation",
                        {"notes": "done", "reason": "r"}).status_code == 403
    assert db_snapshot() == before


def test_list_and_filter(changes, team, master_data):
    low = changes.create_number(team.raiser)
    high = changes.create_number(team.raiser, risk="high", change_type="equipment")
    changes.ok(team.raiser, low, "submit")
    headers = changes.headers(team.auditor)

    def numbers(query: str = "") -> list[str]:
        response = changes.client.get(f"/api/v1/change-controls{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [record["number"] for record in response.get_json()]

    assert numbers() == [high, low]
    assert numbers("?risk=high") == [high]
    assert numbers("?change_type=specification") == [low]
    assert numbers("?state=in_approval") == [low]
    assert numbers("?limit=1&offset=1") == [low]
    bad = changes.client.get("/api/v1/change-controls?risk=extreme", headers=headers)
    assert bad.status_code == 422 and "risk" in bad.get_json()["errors"]


def test_openapi_declares_the_change_control_endpoints(changes, team):
    spec = changes.client.get("/api/v1/openapi.json",
                              headers=changes.headers(team.auditor)).get_json()
    paths = spec["paths"]
    base = "/api/v1/change-controls"
    assert {"get", "post"} <= set(paths[base])
    assert {"get", "patch"} <= set(paths[base + "/{number}"])
    assert "post" in paths[base + "/{number}/impacted-items"]
    assert "delete" in paths[base + "/{number}/impacted-items/{kind}/{item_number}"]
    for suffix in ("/implementation", "/verification", "/transitions"):
        operation = paths[base + "/{number}" + suffix]["post"]
        assert "requestBody" in operation and "200" in operation["responses"]
    created = paths[base]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    name = created["$ref"].rsplit("/", 1)[-1]
    properties = spec["components"]["schemas"][name]["properties"]
    assert {"impacted_items", "approvals", "approvals_required", "risk"} <= set(properties)
