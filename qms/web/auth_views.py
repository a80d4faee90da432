"""Sign-in, sign-out, password change and the language switch.

A failed credential check is committed before the page says so: the failure count, the
lockout and their audit events must survive the refused request (Part 11 §11.300(d)), so
that refusal is returned (the page commits it: qms.web.page); a refusal that keeps nothing
goes through ``refuse``. A sign-in waits for the commit that records it (after_commit).
"""
from __future__ import annotations

import math
import re
import time
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, ngettext
from flask_login import UserMixin, current_user, login_user, logout_user

from qms.context import after_commit, db_session, release_write_lock, state
from qms.errors import AccountLocked, Conflict, DomainError, InvalidInput, TooManyAttempts
from qms.identity import authentication, password_change
from qms.identity.authentication import check_credentials, record_login, record_logout
from qms.identity.models import User
from qms.web import LAST_ACTIVITY, LOCALE_KEY, LOCALES, login_manager, page, refuse
from qms.web.forms import ChangePasswordForm, LanguageForm, LoginForm


class SignedInUser(UserMixin):
    """The Flask-Login view of a User. Its id embeds the password-change time and the user's
    session generation, so a session ends when the password is changed or reset elsewhere,
    and every copy of the session cookie dies at logout or idle timeout."""

    def __init__(self, record: User):
        self.record = record

    def get_id(self) -> str:
        return session_id_of(self.record)

    @property
    def is_active(self) -> bool:
        return self.record.active and not self.record.locked

    @property
    def username(self) -> str:
        return self.record.username

    @property
    def full_name(self) -> str:
        return self.record.full_name

    @property
    def roles(self) -> list[str]:
        return self.record.roles


def password_stamp(user: User) -> str:
    changed = user.password_changed_at
    return str(int(changed.timestamp() * 1_000_000)) if changed else "0"


def session_id_of(user: User) -> str:
    return f"{user.id}:{password_stamp(user)}:{user.session_generation}"


@login_manager.user_loader
def load_user(session_id: str) -> SignedInUser | None:
    """Deactivated and locked accounts, and sessions ended elsewhere, are refused at the
    next request."""
    user_id = session_id.partition(":")[0]
    if not user_id.isdigit():
        return None
    user = db_session().get(User, int(user_id))
    if user is None or not user.active or user.locked or session_id_of(user) != session_id:
        return None
    return SignedInUser(user)


@page("/login", methods=("GET", "POST"))
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if not form.validate_on_submit():
        return render_template("login.html", form=form)
    try:
        check = check_credentials(db_session(), state().security, form.username.data,
                                  form.password.data, purpose="login")
    except TooManyAttempts as error:
        refuse(render_template("login.html", form=form, error=throttled_message(error)),
               error.status, error.headers)
    if not check.ok:  # kept: the failure count, any lockout and their audit events
        return render_template("login.html", form=form, error=login_error(check.error)), \
            check.error.status
    record_login(db_session(), check.user, channel="web")
    after_commit(lambda: start_session(check.user))  # signed in once the login is recorded
    return redirect(safe_target(form.next.data) or url_for("web.home"))


def login_error(error: DomainError) -> str:
    if isinstance(error, AccountLocked):
        return _("This account is locked after repeated failed sign-in attempts. "
                 "Try again later or ask an administrator to unlock it.")
    # deactivated and unknown accounts get the same answer as a wrong password
    return _("Invalid username or password.")


def throttled_message(error: TooManyAttempts) -> str:
    """The wait in minutes from a minute on (Retry-After keeps the seconds)."""
    if error.retry_after < 60:
        return ngettext("Too many failed sign-in attempts from this computer or for this "
                        "username. Try again in %(num)d second.",
                        "Too many failed sign-in attempts from this computer or for this "
                        "username. Try again in %(num)d seconds.", error.retry_after)
    return ngettext("Too many failed sign-in attempts from this computer or for this "
                    "username. Try again in %(num)d minute.",
                    "Too many failed sign-in attempts from this computer or for this "
                    "username. Try again in %(num)d minutes.", math.ceil(error.retry_after / 60))


def start_session(user: User) -> None:
    keep_locale = session.get(LOCALE_KEY)
    session.clear()  # nothing from before sign-in carries over (session fixation)
    if keep_locale:
        session[LOCALE_KEY] = keep_locale
    login_user(SignedInUser(user))
    session[LAST_ACTIVITY] = int(time.time())


def end_session() -> None:
    keep_locale = session.get(LOCALE_KEY)
    logout_user()
    session.clear()
    if keep_locale:
        session[LOCALE_KEY] = keep_locale


@page("/logout", methods=("POST",))
def logout():
    """POST only (with the CSRF token): a link or an image elsewhere cannot sign anyone out."""
    record_logout(db_session(), current_user.record, why="logout")
    after_commit(signed_out)
    return redirect(url_for("web.login"))


def signed_out() -> None:
    end_session()
    flash(_("You have signed out."), "info")


@page("/password", methods=("GET", "POST"))
def change_password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return render_password_form(form)
    db, security = db_session(), state().security
    release_write_lock()  # loading the signed-in user began the request's writer
    try:
        prepared, check = password_change.prepare_and_check(
            db, security, current_user.username, form.current_password.data,
            form.new_password.data)
    except TooManyAttempts as error:
        form.current_password.errors.append(throttled_message(error))
        refuse(render_password_form(form), error.status, error.headers)
    if not check.ok:  # kept: a wrong current password counts toward lockout
        return refused_password_change(form, check.error)
    try:
        password_change.change_password(db, check.user, prepared)
    except InvalidInput as error:
        form.new_password.errors.append(policy_message(error.detail))
        refuse(render_password_form(form), 422)
    except Conflict as error:
        refuse(password_change_conflict(form, error))
    after_commit(lambda: password_changed(check.user))
    return redirect(url_for("web.home"))


def password_changed(user: User) -> None:
    start_session(user)  # the session id carries the new password stamp
    flash(_("Your password has been changed."), "success")


def refused_password_change(form: ChangePasswordForm, error: DomainError):
    if isinstance(error, Conflict):
        return password_change_conflict(form, error)
    if isinstance(error, AccountLocked):
        end_session()
        flash(login_error(error), "error")
        return redirect(url_for("web.login"))
    form.current_password.errors.append(_("The current password is not correct."))
    return render_password_form(form), error.status


def password_change_conflict(form: ChangePasswordForm, error: Conflict):
    """Nothing was changed. A password changed or reset meanwhile (another tab, an
    administrator) has already ended this session's right to it, so the user signs in again
    and retries. A signing key that the password does not open needs an administrator."""
    if error.detail == password_change.CHANGED_MEANWHILE:
        end_session()
        flash(_("Your password or signing key was changed while this change was being made, "
                "so nothing was changed. Sign in and try again."), "error")
        return redirect(url_for("web.login"))
    form.current_password.errors.append(_("Your signing key does not open with this password. "
                                          "Nothing was changed. Ask an administrator to reset "
                                          "your password."))
    return render_password_form(form), error.status


def render_password_form(form: ChangePasswordForm):
    policy = state().security.policy
    return render_template("change_password.html", form=form, policy=policy,
                           forced=authentication.password_change_due(state().security,
                                                                     current_user.record))


# the password policy's English problems (qms.identity.passwords), in the UI's language
POLICY_MESSAGES = (
    (re.compile(r"must be at least (\d+) characters long"),
     lambda m: _("Must be at least %(count)s characters long.", count=m[1])),
    (re.compile(r"must not start or end with whitespace"),
     lambda m: _("Must not start or end with a space.")),
    (re.compile(r"must not contain the username"),
     lambda m: _("Must not contain your username.")),
    (re.compile(r"must use at least (\d+) different characters"),
     lambda m: _("Must use at least %(count)s different characters.", count=m[1])),
    (re.compile(r"must differ from the last (\d+) passwords"),
     lambda m: _("Must differ from your last %(count)s passwords.", count=m[1])),
)


def policy_message(detail: str) -> str:
    return " ".join(translate_problem(part) for part in detail.split("; "))


def translate_problem(problem: str) -> str:
    for pattern, message in POLICY_MESSAGES:
        match = pattern.fullmatch(problem)
        if match:
            return message(match)
    return problem


@page("/language", methods=("POST",))
def set_language():
    form = LanguageForm()
    if form.validate_on_submit() and form.locale.data in LOCALES:
        session[LOCALE_KEY] = form.locale.data
    return redirect(safe_target(form.next.data) or url_for("web.home"))


def safe_target(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would help phishing for passwords."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None

