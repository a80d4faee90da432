"""Administrative commands run as an authenticated administrator, who is the audit actor
(issue 9, point 1): credentials from QMS_OPERATOR / QMS_OPERATOR_PASSWORD or prompted
without echo, checked like a login (failures count and are audited), and refused for an
operator who is locked, deactivated, on a temporary password or without the permission."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from qms.identity.authentication import find_user
from qms.identity.models import ApiToken
from tests.conftest import PASSWORD

OPERATOR = {"QMS_OPERATOR": "ada.admin", "QMS_OPERATOR_PASSWORD": PASSWORD}
TEMPORARY = "temporary password 1"


@pytest.fixture
def qms(app, make_user):
    """qms(*args, env=OPERATOR, input=None) -> click result of the command, in process."""
    make_user("ada.admin", "admin")

    def run(*args: str, env: dict | None = None, input: str | None = None):
        return app.test_cli_runner().invoke(args=list(args), env=OPERATOR if env is None else env,
                                            input=input)
    return run


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_every_administrative_command_names_the_operator(app, qms, uow, audit_seq, audit_since):
    start = audit_seq()
    _ok(qms("user", "create", "alice", "--name", "Alice Able", "--role", "inspector",
            "--password-stdin", input=TEMPORARY + "\n"))
    _ok(qms("user", "set-roles", "alice", "--role", "auditor", "--reason", "moved to QA audit"))
    _ok(qms("user", "reset-password", "alice", "--reason", "forgotten", "--password-stdin",
            input="another temporary 2\n"))
    with uow() as session:
        find_user(session, "alice").failed_attempts = 5
        find_user(session, "alice").locked_at = find_user(session, "alice").created_at
    _ok(qms("user", "unlock", "alice", "--reason", "called the help desk"))
    _ok(qms("user", "deactivate", "alice", "--reason", "left the company"))
    _ok(qms("user", "create", "erp1", "--name", "SAP PI", "--role", "erp", "--service"))
    _ok(qms("token", "create", "erp1", "--name", "feed"))
    with uow() as session:
        token_id = session.scalar(select(ApiToken.id))
    _ok(qms("token", "revoke", str(token_id), "--reason", "leaked in a ticket"))
    events = audit_since(start)
    assert [(action, actor) for action, actor, _, _ in events] == [
        ("identity.user.created", "ada.admin"), ("identity.user.roles_changed", "ada.admin"),
        ("identity.password.reset", "ada.admin"), ("identity.user.unlocked", "ada.admin"),
        ("identity.user.deactivated", "ada.admin"), ("identity.user.created", "ada.admin"),
        ("identity.token.created", "ada.admin"), ("identity.token.revoked", "ada.admin")]


def test_the_operator_is_prompted_without_echo_when_the_environment_says_nothing(qms,
                                                                                 audit_since,
                                                                                 audit_seq):
    start = audit_seq()
    result = _ok(qms("user", "create", "bob", "--name", "Bob Baker", "--role", "auditor",
                     "--password-stdin", env={},
                     input=f"{TEMPORARY}\nada.admin\n{PASSWORD}\n"))
    assert "Administrator username" in result.output and "Password of ada.admin" in result.output
    assert PASSWORD not in result.output
    assert [(a, actor) for a, actor, _, _ in audit_since(start)] == \
        [("identity.user.created", "ada.admin")]


def test_no_operator_at_all_is_refused(qms, app):
    result = qms("user", "create", "bob", "--name", "Bob", "--role", "auditor", "--service",
                 env={}, input="")
    assert result.exit_code == 1 and "QMS_OPERATOR and QMS_OPERATOR_PASSWORD" in result.output
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "bob") is None


def test_a_wrong_operator_password_is_counted_audited_and_changes_nothing(qms, app, audit_seq,
                                                                         audit_since):
    start = audit_seq()
    result = qms("user", "create", "bob", "--name", "Bob", "--role", "erp", "--service",
                 env={"QMS_OPERATOR": "ada.admin", "QMS_OPERATOR_PASSWORD": "not the password"})
    assert result.exit_code == 1
    assert "administrator 'ada.admin' refused: invalid username or password" in result.output
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "bob") is None
        assert find_user(session, "ada.admin").failed_attempts == 1
    assert [(a, actor) for a, actor, _, _ in audit_since(start)] == \
        [("identity.login.failed", "ada.admin")]


def _lock(session, username):
    user = find_user(session, username)
    user.locked_at = user.created_at


def _deactivate(session, username):
    find_user(session, username).active = False


def _make_temporary(session, username):
    find_user(session, username).password_temporary = True


@pytest.mark.parametrize("spoil, message", [
    (_lock, "locked"),
    (_deactivate, "invalid username or password"),
    (_make_temporary, "temporary or expired"),
])
def test_an_operator_who_could_not_log_in_is_refused(qms, app, uow, spoil, message):
    with uow() as session:
        spoil(session, "ada.admin")
    result = qms("user", "create", "bob", "--name", "Bob", "--role", "erp", "--service")
    assert result.exit_code == 1 and message in result.output
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "bob") is None


def test_an_operator_without_the_permission_is_refused_and_audited(qms, app, make_user,
                                                                   audit_seq, audit_since):
    make_user("quinn.qa", "qa_approver")
    start = audit_seq()
    result = qms("user", "set-roles", "quinn.qa", "--role", "admin", "--reason", "promotion",
                 env={"QMS_OPERATOR": "quinn.qa", "QMS_OPERATOR_PASSWORD": PASSWORD})
    assert result.exit_code == 1 and "'user.manage' is required" in result.output
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "quinn.qa").roles == ["qa_approver"]
    assert [(a, actor) for a, actor, _, _ in audit_since(start)] == \
        [("identity.login.refused", "quinn.qa")]


def test_an_administrator_does_not_administer_their_own_account(qms, app):
    result = qms("user", "set-roles", "ada.admin", "--role", "admin", "--role", "qa_approver",
                 "--reason", "I want to approve too")
    assert result.exit_code == 1 and "own account" in result.output
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "ada.admin").roles == ["admin"]
