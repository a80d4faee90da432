"""User administration: unique names forever, roles, audit events."""
from __future__ import annotations

import pytest

from audit import trail
from qms.errors import Conflict, InvalidInput
from qms.identity.authentication import find_user
from qms.identity.users import create_user, deactivate_user, set_roles


def test_usernames_are_never_reused(app, make_user):
    make_user("gina", "inspector")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        deactivate_user(session, actor="system", user=find_user(session, "gina"), reason="left")
    with pytest.raises(Conflict), state.db.unit_of_work() as session:
        create_user(session, state.security, actor="system", username="gina", full_name="Gina 2",
                    roles=["inspector"],
                    password=state.security.hash_password("another good password"))


@pytest.mark.parametrize("field, kwargs", [
    ("username", {"username": "Bad Name"}),
    ("username", {"username": "system"}),
    ("full_name", {"full_name": "  "}),
    ("roles", {"roles": []}),
    ("roles", {"roles": ["superuser"]}),
    ("password", {"password": "short"}),
])
def test_invalid_new_users_are_refused(app, field, kwargs):
    state = app.extensions["qms"]
    values = {"username": "new.user", "full_name": "New User", "roles": ["inspector"],
              "password": "a good long password"} | kwargs
    values["password"] = state.security.hash_password(values["password"])
    with pytest.raises(InvalidInput) as refused, state.db.unit_of_work() as session:
        create_user(session, state.security, actor="system", **values)
    assert field in refused.value.errors


def test_role_change_is_audited_with_before_and_after(app, make_user):
    make_user("hank", "inspector")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        set_roles(session, state.security, actor="system", user=find_user(session, "hank"),
                  roles=["inspector", "qa_reviewer"], reason="promoted")
    with state.db.engine.connect() as connection:
        [event] = trail.query_events(connection, action="identity.user.roles_changed")
    assert event.data == {"before": {"roles": ["inspector"]},
                          "after": {"roles": ["inspector", "qa_reviewer"]}}
    assert event.reason == "promoted"
