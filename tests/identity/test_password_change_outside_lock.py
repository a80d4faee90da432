"""A password change, and an administrator's creation or reset of an account, do their slow
work before the write lock (issue 9, point 10): while the current password, the history and
the new password are hashed (argon2) and the signing key is sealed (scrypt), another writer
commits, on SQLite (the database-wide write lock) as on PostgreSQL (the user's row lock). The
outcome is written afterwards under the user's row lock, and only if the account is still as
the preparation saw it: a reset or a replaced key in between refuses the change instead of
being overwritten.

Each slow step is the real one, observed: it announces that it started and waits until the
test has tried another write transaction, so the tests assert an order, never a duration.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from qms.errors import Conflict
from qms.esign import keys
from qms.identity.authentication import check_credentials, find_user, set_password
from qms.identity.models import User
from qms.identity.password_change import change_password, prepare_password_change
from qms.identity.passwords import HashedPassword
from qms.identity.users import reset_password
from tests.conftest import PASSWORD
from tests.esign.test_signing_outside_lock import ObservedCall
from tests.identity.test_lock_free_password_check import ObservedHasher, write_beside
from tests.identity.test_login_and_lockout import events, failed_attempts

NEW = "a brand new passphrase 7"
TEMPORARY = "temporary password 1"
OTHER = "another new passphrase 8"
OPERATOR = {"QMS_OPERATOR": "ada.admin", "QMS_OPERATOR_PASSWORD": PASSWORD}
# the slow steps of a password change: the current and the remembered passwords checked, the
# new one hashed, the signing key re-sealed under it
CHANGE_STEPS = ("argon2 verify", "argon2 hash", "scrypt")


@pytest.fixture
def observe(app, monkeypatch):
    """observe(step) -> the real argon2 verify or hash, or scrypt, observed from now on."""
    security = app.extensions["qms"].security
    security.dummy_hash()  # computed now, not while the test observes

    def start(step: str):
        if step == "scrypt":
            observed = ObservedCall(keys.derive_wrapping_key)
            monkeypatch.setattr(keys, "derive_wrapping_key", observed)
        else:
            observed = ObservedHasher(security.hasher, step.removeprefix("argon2 "))
            monkeypatch.setattr(security, "hasher", observed)
        return observed
    return start


def while_observed(observed, work, meanwhile) -> None:
    """Run ``work`` in a thread; once its observed step has started, call ``meanwhile()``,
    then let the step go on and wait for ``work`` to end."""
    thread = threading.Thread(target=work)
    thread.start()
    try:
        assert observed.started.wait(timeout=60)
        meanwhile()
    finally:
        observed.go.set()
        thread.join(timeout=60)


def write_while_observed(app, observed, work, username: str) -> str:
    """Try another writer on ``username``'s row while ``work``'s observed step runs; what
    the other writer managed."""
    outcome = []
    while_observed(observed, work, lambda: outcome.append(write_beside(app, username)))
    return outcome[0]


def stored(app, username: str, *, opens_with: str | None = None) -> dict:
    """What the database holds of the account now; ``opens_with`` unwraps the active key."""
    with app.extensions["qms"].db.reading() as session:
        user = find_user(session, username)
        key = keys.active_key(session, user.id)
        if opens_with is not None:
            keys.unwrap(key, opens_with)  # KeyUnwrapError otherwise
        return {"hash": user.password_hash, "temporary": user.password_temporary,
                "key_id": key.key_id if key else None}


@pytest.mark.parametrize("step", CHANGE_STEPS)
def test_another_writer_commits_while_a_password_change_does_its_slow_work(
        app, make_user, auth_headers, observe, step):
    victim = make_user("victim", "qa_reviewer")
    headers = auth_headers(victim)  # a token sent along: its lookup begins the writer
    observed = observe(step)
    answers = []

    def change():
        answers.append(app.test_client().post("/api/v1/auth/password", headers=headers, json={
            "username": "victim", "old_password": victim.password,
            "new_password": NEW}).status_code)

    assert write_while_observed(app, observed, change, "victim") == "other writer committed"
    assert answers == [204]
    before = stored(app, "victim")
    # the same key as before, sealed under the new password
    assert stored(app, "victim", opens_with=NEW) == {**before, "temporary": False}


@pytest.mark.parametrize("operation", ["create", "reset"])
def test_another_writer_commits_while_an_administrator_s_temporary_password_is_hashed(
        app, make_user, auth_headers, observe, operation):
    make_user("victim", "auditor")
    headers = auth_headers(make_user("ada.admin", "admin"))
    observed = observe("argon2 hash")
    path, body, status = {
        "create": ("/api/v1/users", {"username": "newbie", "full_name": "New Bie",
                                     "roles": ["auditor"]}, 201),
        "reset": ("/api/v1/users/victim/password-reset", {"reason": "forgotten"}, 200),
    }[operation]
    answers = []

    def administer():
        answers.append(app.test_client().post(path, headers=headers, json=body))

    assert write_while_observed(app, observed, administer, "victim") == "other writer committed"
    assert [answer.status_code for answer in answers] == [status]
    account = stored(app, body.get("username", "victim"))
    assert account["temporary"]
    assert observed.real.verify(answers[0].get_json()["temporary_password"], account["hash"])


def test_another_writer_commits_while_the_reset_command_hashes(app, make_user, observe):
    make_user("ada.admin", "admin")
    make_user("victim", "auditor")
    observed = observe("argon2 hash")
    results = []

    def reset():
        results.append(app.test_cli_runner().invoke(
            args=["user", "reset-password", "victim", "--reason", "forgotten",
                  "--password-stdin"], env=OPERATOR, input=TEMPORARY + "\n"))

    assert write_while_observed(app, observed, reset, "victim") == "other writer committed"
    assert results[0].exit_code == 0, results[0].output
    account = stored(app, "victim")
    assert account["temporary"] and observed.real.verify(TEMPORARY, account["hash"])


@pytest.mark.parametrize("meanwhile", ["reset", "another change"])
def test_a_reset_or_another_change_while_a_change_is_prepared_stands(app, make_user, observe,
                                                                    uow, meanwhile):
    """The change prepared on the old password is refused 409 ("changed meanwhile", sign in
    again): the password was right when it was checked, so nothing counts toward the
    lockout and no failure is audited; what committed meanwhile stands."""
    victim = make_user("victim", "qa_reviewer")
    observed = observe("argon2 hash")
    answers = []

    def change():
        answers.append(app.test_client().post("/api/v1/auth/password", json={
            "username": "victim", "old_password": victim.password, "new_password": NEW}))

    def intervene():  # while the new password is being hashed
        security = app.extensions["qms"].security
        with uow() as session:
            user = find_user(session, "victim", for_update=True)
            if meanwhile == "reset":
                reset_password(session, security, actor="ada.admin", user=user,
                               reason="forgotten",
                               temporary_password=really_hashed(security, TEMPORARY))
            else:  # a double-submitted form, or a second tab, got there first
                set_password(session, user, really_hashed(security, OTHER).hash,
                             temporary=False)
    while_observed(observed, change, intervene)
    assert answers[0].status_code == 409, answers[0].get_json()
    assert "changed while" in answers[0].get_json()["detail"]
    assert failed_attempts(app, "victim") == 0 and events(app, "identity.login.failed") == []
    account = stored(app, "victim")
    now = TEMPORARY if meanwhile == "reset" else OTHER
    assert account["temporary"] == (meanwhile == "reset")
    assert observed.real.verify(now, account["hash"])
    if meanwhile == "reset":
        assert account["key_id"] is None  # retired by the reset, nothing sealed by the change


def test_a_key_replaced_while_a_change_is_prepared_refuses_the_change(app, make_user, uow):
    make_user("victim", "qa_reviewer")
    security = app.extensions["qms"].security
    with uow() as session:  # a key from before keys waited for the user's own password
        keys.active_key(session, find_user(session, "victim").id).replace_before_signing = True
    with uow() as session:
        prepared = prepare_password_change(session, security, "victim", PASSWORD, NEW)
    with uow() as session:  # meanwhile a signature replaces it (qms.esign.service)
        key = keys.active_key(session, find_user(session, "victim").id)
        new_key = keys.seal_new_key(PASSWORD, security.key_wrap_log_n)
        replaced = keys.replace_legacy_key(session, key, username="victim", new_key=new_key)
        replaced_id = replaced.key_id
    with pytest.raises(Conflict), uow() as session:
        check = check_credentials(session, security, "victim", PASSWORD,
                                  purpose="password_change", verdict=prepared.verdict)
        change_password(session, check.user, prepared)
    account = stored(app, "victim", opens_with=PASSWORD)  # the password did not change
    assert account["key_id"] == replaced_id and not account["temporary"]


def really_hashed(security, password: str) -> HashedPassword:
    """Security.hash_password with the real hasher behind an observed one."""
    return HashedPassword(password, security.hasher.real.hash(password))


def test_the_other_writer_sees_the_user_row(app, make_user):
    """write_beside really locks the user's row (else the tests above would prove nothing)."""
    make_user("victim", "auditor")
    with app.extensions["qms"].db.unit_of_work() as session:
        session.scalar(select(User).where(User.username == "victim").with_for_update())
        assert write_beside(app, "victim") == "other writer blocked"
