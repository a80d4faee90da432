"""Fixtures for change control over HTTP: a team, master data the changes can name, and a
small client that walks a change control along its workflow."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace

import pytest

from tests.deviations.support import audit_events, audit_head

MATERIAL, OTHER_MATERIAL, SUPPLIER = "RM-API-001", "PK-BOT-010", "SUP-ACME"


@pytest.fixture
def team(make_user):
    """Who raises, approves, implements and verifies changes, and who may not."""
    return SimpleNamespace(
        raiser=make_user("rita.raiser", "qa_reviewer"),
        qa1=make_user("anna.qa", "qa_approver"),
        qa2=make_user("bert.qa", "qa_approver"),
        prod=make_user("piet.prod", "production"),
        prod2=make_user("pia.prod", "production"),
        inspector=make_user("ivan.inspector", "inspector"),
        auditor=make_user("otto.auditor", "auditor"))


@pytest.fixture
def master_data(app):
    """Two materials and a supplier, created through the record core by a QA user
    (their own HTTP endpoints belong to the materials module)."""
    from qms.identity.users import create_user
    from qms.records.service import create_record

    state = app.extensions["qms"]
    with app.app_context(), state.db.unit_of_work() as session:
        actor = create_user(session, state.security, actor="system", username="mara.master",
                            full_name="Mara Master", roles=["qa_reviewer"],
                            password=state.security.hash_password(
                                "correct horse battery staple"), temporary=False)
        materials = state.workflows.get("material")
        for code, name in ((MATERIAL, "Paracetamol API"), (OTHER_MATERIAL, "Bottle 100 mL")):
            create_record(session, materials, actor, {"name": name, "kind": "raw", "unit": "kg",
                                                      "description": ""}, number=code)
        create_record(session, state.workflows.get("supplier"), actor,
                      {"name": "Acme Chemicals", "address": "", "contact": ""}, number=SUPPLIER)
    return SimpleNamespace(material=MATERIAL, other_material=OTHER_MATERIAL, supplier=SUPPLIER)


@dataclass
class ChangeControls:
    client: object
    auth_headers: object
    _headers: dict = field(default_factory=dict)

    def headers(self, user) -> dict:
        if user.username not in self._headers:
            self._headers[user.username] = self.auth_headers(user)
        return self._headers[user.username]

    def create(self, user, drop=(), **fields):
        """POST a change control: a complete low-risk change unless ``fields`` say
        otherwise; ``drop`` names fields to leave out."""
        body = {"title": "Tighter assay limits", "change_type": "specification", "risk": "low",
                "description": "Assay limits 98.0-102.0 % instead of 97.0-103.0 %.",
                "justification": "Process capability allows it; customer request.",
                "implementation_plan": "Revise the specification and the incoming plan.",
                "impacted_items": [{"kind": "material", "number": MATERIAL}], **fields}
        body = {name: value for name, value in body.items() if name not in drop}
        return self.client.post("/api/v1/change-controls", json=body, headers=self.headers(user))

    def create_number(self, user, **fields) -> str:
        response = self.create(user, **fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["number"]

    def get(self, user, number: str):
        return self.client.get(f"/api/v1/change-controls/{number}", headers=self.headers(user))

    def post(self, user, number: str, suffix: str, body: dict):
        return self.client.post(f"/api/v1/change-controls/{number}{suffix}", json=body,
                                headers=self.headers(user))

    def transition(self, user, number: str, action: str, *, reason: str | None = None,
                   meaning: str | None = None, password: str | None = None,
                   version: int | None = None):
        """A signed transition (``meaning``) names the version the signer saw: ``version``,
        else the one the signer reads now."""
        body: dict = {"action": action}
        if reason is not None:
            body["reason"] = reason
        if meaning is not None:
            body["signature"] = {"username": user.username,
                                 "password": password or user.password, "meaning": meaning}
            body["version"] = version or self.get(user, number).get_json()["version"]
        return self.post(user, number, "/transitions", body)

    def ok(self, user, number: str, action: str, **options) -> dict:
        response = self.transition(user, number, action, **options)
        assert response.status_code == 200, (action, user.username, response.get_json())
        return response.get_json()

    def approve(self, user, number: str):
        return self.transition(user, number, "approve", meaning="approved")

    def submitted(self, user, **fields) -> str:
        number = self.create_number(user, **fields)
        self.ok(user, number, "submit")
        return number


@pytest.fixture
def changes(client, auth_headers) -> ChangeControls:
    return ChangeControls(client, auth_headers)


@pytest.fixture
def audit_seq(app):
    """audit_seq() -> the sequence number of the newest audit event."""
    return partial(audit_head, app)


@pytest.fixture
def audit_since(app):
    """audit_since(seq) -> [(action, actor, entity_id)] of the events after seq."""
    return partial(audit_events, app)
