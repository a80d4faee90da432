"""Factories for the table-driven workflow test (tests/test_workflow_permissions.py): each
creates one record as "author" through the HTTP API, with the approvals it needs signed by
other roles. ``api`` is that test's Api (post / created as a user name)."""
from __future__ import annotations

from itertools import count

_codes = count(1)


def _plan_body(material: str) -> dict:
    return {"material": material, "stage": "incoming", "title": "Incoming check",
            "sample_size": 2,
            "characteristics": [{"code": "DIA", "name": "Diameter", "type": "numeric",
                                 "unit": "mm", "lsl": "9.9", "usl": "10.1", "decimals": 1},
                                {"code": "VIS", "name": "Visual", "type": "attribute"}]}


def _material(api) -> str:
    code = f"RM-WF-{next(_codes)}"
    api.created("author", "/materials", {"code": code, "name": "Part", "kind": "raw",
                                         "unit": "pcs", "shelf_life_days": 365})
    return code


def inspection_plan(api) -> str:
    """A draft incoming plan authored by "author"."""
    return api.created("author", "/inspection-plans", _plan_body(_material(api)))["number"]


def inspection(api) -> str:
    """An open incoming inspection lot, opened by "author" receiving a lot of a material
    whose plan (authored by "author") a QA approver approved."""
    material = _material(api)
    plan = api.created("author", "/inspection-plans", _plan_body(material))["number"]
    _ok(api.post("author", f"/inspection-plans/{plan}/transitions", {"action": "submit"}))
    _ok(api.post("role.qa_approver", f"/inspection-plans/{plan}/transitions",
                 _signed(api, "role.qa_approver", "approve", "approved", 2)))
    supplier = f"SUP-WF-{next(_codes)}"
    api.created("author", "/suppliers", {"code": supplier, "name": "Supplier"})
    _ok(api.post("role.qa_approver", f"/suppliers/{supplier}/transitions",
                 _signed(api, "role.qa_approver", "approve", "approved", 1)))
    lot = api.created("author", "/lots", {"material": material, "supplier": supplier,
                                          "quantity": "10", "unit": "pcs"})["number"]
    headers = api._headers["author"]
    found = api.client.get("/api/v1/inspections", query_string={"lot": lot},
                           headers=headers).get_json()
    return found[0]["number"]


def _signed(api, user: str, action: str, meaning: str, version: int) -> dict:
    """A signed transition naming the version the signer saw."""
    account = api.users[user]
    return {"action": action, "version": version,
            "signature": {"username": account.username, "password": account.password,
                          "meaning": meaning}}


def _ok(response) -> None:
    assert response.status_code == 200, response.get_json()
