"""Workflow configuration checks and transition tables, without a database."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from qms.identity.roles import RoleTable, load_roles
from qms.records.workflow import load_workflows, open_transitions, parse_workflows
from qms.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]

ROLES = RoleTable(permissions={
    "qa_reviewer": frozenset({"widget.submit", "widget.review"}),
    "qa_approver": frozenset({"widget.submit", "widget.approve"}),
    "admin": frozenset({"user.manage"}),
}, descriptions={})

BASE = {"workflows": {"widget": {
    "label": "Widget", "prefix": "WID", "initial": "draft",
    "states": ["draft", "in_review", "approved"], "editable_states": ["draft"],
    "transitions": [
        {"action": "submit", "from": ["draft"], "to": "in_review", "permission": "widget.submit"},
        {"action": "approve", "from": ["in_review"], "to": "approved",
         "permission": "widget.approve", "meaning": "approved", "segregation": ["not_author"]},
        {"action": "return", "from": ["in_review"], "to": "draft",
         "permission": "widget.review", "reason_required": True},
    ]}}}


def parse(document=BASE, roles=ROLES, record_types=("widget",)):
    return parse_workflows(document, roles, record_types)


def changed(edit) -> dict:
    document = copy.deepcopy(BASE)
    edit(document["workflows"]["widget"])
    return document


def test_shipped_configuration_loads_with_the_shipped_roles():
    roles = load_roles(REPO / "config" / "roles.toml")
    registry = load_workflows(REPO / "config" / "workflows.toml", roles)
    documents = registry.get("document")
    assert documents.initial == "draft" and documents.prefix == "DOC"
    assert documents.is_editable("draft") and not documents.is_editable("in_review")
    approve = documents.find("reviewed", "approve")
    assert approve.meaning == "approved"
    assert approve.segregation == ("not_author", "not_signer:reviewed")
    assert documents.find("effective", "retire").reason_required


def test_shipped_signing_permissions_are_not_held_by_admin():
    roles = load_roles(REPO / "config" / "roles.toml")
    registry = load_workflows(REPO / "config" / "workflows.toml", roles)
    signed = [t for workflow in registry.workflows.values() for t in workflow.transitions
              if t.signed]
    assert signed and not any(roles.allows(["admin"], t.permission) for t in signed)


def test_transition_table_by_state():
    workflow = parse().get("widget")
    assert [t.action for t in workflow.transitions_from("in_review")] == ["approve", "return"]
    assert workflow.transitions_from("approved") == []
    assert workflow.find("draft", "approve") is None
    assert workflow.find("in_review", "approve").target == "approved"


def test_open_transitions_depend_on_the_permissions_held():
    registry = parse()
    workflow = registry.get("widget")
    assert [t.action for t in open_transitions(workflow, "in_review", {"widget.review"})] == \
        ["return"]
    assert [t.action for t in registry.open_for("widget", "in_review", ["qa_approver"])] == \
        ["approve"]
    assert registry.open_for("widget", "in_review", ["admin"]) == []
    assert registry.open_for("widget", "draft", ["qa_reviewer", "qa_approver"])[0].action == \
        "submit"


def test_signed_flag_follows_the_meaning():
    workflow = parse().get("widget")
    assert workflow.find("in_review", "approve").signed
    assert not workflow.find("draft", "submit").signed


def _set(key, value):
    return lambda w: w.__setitem__(key, value)


def _set_transition(index, key, value):
    return lambda w: w["transitions"][index].__setitem__(key, value)


BAD_CONFIGS = [
    ("initial not a state", _set("initial", "start"), "initial state 'start' is not in states"),
    ("unknown from state", _set_transition(0, "from", ["drafted"]),
     "unknown state 'drafted' in from"),
    ("unknown to state", _set_transition(0, "to", "done"), "unknown state 'done' in to"),
    ("unknown editable state", _set("editable_states", ["open"]),
     "unknown state 'open' in editable_states"),
    ("duplicate action per state", lambda w: w["transitions"].append(
        {"action": "submit", "from": ["draft"], "to": "approved",
         "permission": "widget.submit"}),
     "action 'submit' is defined twice from state 'draft'"),
    ("meaning outside the fixed list", _set_transition(1, "meaning", "blessed"),
     "meaning 'blessed' is not one of"),
    ("permission held by no role", _set_transition(0, "permission", "widget.launch"),
     "permission 'widget.launch' of action 'submit' is held by no role"),
    ("unknown key", _set_transition(0, "permision", "x"), "unknown keys ['permision']"),
    ("missing key", lambda w: w.pop("initial"), "missing keys ['initial']"),
    ("segregation without meaning", _set_transition(0, "segregation", ["not_author"]),
     "segregation rules apply to signers"),
    ("unknown segregation rule", _set_transition(1, "segregation", ["not_friend"]),
     "unknown segregation rule 'not_friend'"),
    ("bad signer rule meaning", _set_transition(1, "segregation", ["not_signer:liked"]),
     "unknown segregation rule 'not_signer:liked'"),
    ("reason_required not a bool", _set_transition(2, "reason_required", "yes"),
     "reason_required must be true or false"),
    ("bad prefix", _set("prefix", "wid-"), "prefix must be 2-8 capital letters"),
    ("empty states", _set("states", []), "states must not be empty"),
    ("no transitions", _set("transitions", []), "transitions must be a non-empty list"),
    ("an approved state editable, keeping the approval",
     _set("editable_states", ["draft", "approved"]),
     "'approved' is reached by the signed 'approve' and is editable"),
    ("edit return from a state not editable", _set("edit_returns_to", {"approved": "draft"}),
     "edit_returns_to names 'approved', which is not an editable state"),
    ("edit return to an unknown state", lambda w: w.update(
        editable_states=["draft", "approved"], edit_returns_to={"approved": "gone"}),
     "unknown state 'gone' in edit_returns_to"),
    ("edit return to itself", _set("edit_returns_to", {"draft": "draft"}),
     "edit_returns_to must return 'draft' elsewhere"),
    ("edit return not a table", _set("edit_returns_to", ["draft"]),
     "edit_returns_to must be a table of state = state"),
]


@pytest.mark.parametrize("edit, message", [(e, m) for _, e, m in BAD_CONFIGS],
                         ids=[name for name, _, _ in BAD_CONFIGS])
def test_bad_configuration_is_refused_naming_the_problem(edit, message):
    with pytest.raises(ConfigError) as caught:
        parse(changed(edit))
    assert message in str(caught.value)
    assert "workflows.widget" in str(caught.value)


def test_an_edit_of_an_approved_state_returns_it_where_the_workflow_says():
    workflow = parse(changed(lambda w: w.update(
        editable_states=["draft", "approved"], edit_returns_to={"approved": "in_review"})))
    widget = workflow.get("widget")
    assert widget.state_after_edit("approved") == "in_review"
    assert widget.state_after_edit("draft") == "draft"


def test_shipped_qualified_suppliers_return_to_pending_when_edited():
    registry = load_workflows(REPO / "config" / "workflows.toml",
                              load_roles(REPO / "config" / "roles.toml"))
    supplier = registry.get("supplier")
    assert {state: supplier.state_after_edit(state) for state in supplier.editable_states} == {
        "pending": "pending", "approved": "pending", "conditional": "pending",
        "blocked": "blocked"}


def test_admin_holding_a_signing_permission_is_refused():
    roles = RoleTable(permissions={**ROLES.permissions,
                                   "admin": frozenset({"user.manage", "widget.approve"})},
                      descriptions={})
    with pytest.raises(ConfigError, match="admin role holds signing permission 'widget.approve'"):
        parse(roles=roles)


def test_admin_may_hold_an_unsigned_transition_permission():
    roles = RoleTable(permissions={**ROLES.permissions,
                                   "admin": frozenset({"widget.submit"})}, descriptions={})
    assert parse(roles=roles).get("widget")


def test_workflow_without_registered_record_model_is_refused():
    with pytest.raises(ConfigError, match="workflows.widget has no registered record model"):
        parse(record_types=[])


def test_registered_record_type_without_workflow_is_refused():
    with pytest.raises(ConfigError, match="record type 'gadget' is registered but has no "
                                          "workflow"):
        parse(record_types=["widget", "gadget"])


def test_duplicate_prefix_is_refused():
    document = copy.deepcopy(BASE)
    document["workflows"]["gadget"] = copy.deepcopy(BASE["workflows"]["widget"])
    with pytest.raises(ConfigError, match="prefix 'WID' is used by workflows.widget and "
                                          "workflows.gadget"):
        parse(document, record_types=["widget", "gadget"])


def test_missing_workflows_table_is_refused():
    with pytest.raises(ConfigError, match=r"expected at least one \[workflows.<record type>\]"):
        parse({"workflow": {}})


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "workflows.toml"
    path.write_text('[workflows.widget]\nlabel = "W"\nprefix = "WID"\ninitial = "x"\n'
                    'states = ["draft"]\ntransitions = []\n')
    with pytest.raises(ConfigError) as caught:
        load_workflows(path, ROLES, record_types=["widget"])
    assert str(path) in str(caught.value)
    assert "initial state 'x' is not in states" in str(caught.value)
