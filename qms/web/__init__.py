"""The web UI: server-rendered pages for people (programs use the API).

``init_web`` installs what every page relies on: CSRF protection, the login session with its
idle timeout (Part 11 §11.300, EU Annex 11 §12), the forced change of temporary or expired
passwords, the UI language, security headers and HTML error pages. ``page`` declares a page
with the request's one commit point, as ``endpoint`` does for the API.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from flask import (Blueprint, Flask, abort, current_app, flash, make_response, redirect,
                   render_template, request, session, url_for)
from flask_babel import Babel, gettext as _, lazy_gettext as _l
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from qms.context import close_db_session, request_transaction, state
from qms.errors import DomainError
from qms.identity.authentication import password_change_due, record_logout
from qms.identity.models import User

PACKAGE = Path(__file__).resolve().parent.parent
LOCALES = ("en", "zh_Hans_CN")
LOCALE_KEY = "locale"  # session key of the language the user chose
LAST_ACTIVITY = "last_activity"  # session key: epoch seconds of the user's last page request
# reachable without a session (and not counted as activity)
OPEN_ENDPOINTS = frozenset({"web.static", "web.login", "web.set_language"})
# all that a user whose password is temporary or expired may reach
PASSWORD_CHANGE_ENDPOINTS = frozenset({"web.change_password", "web.logout"})
ERROR_PAGE_CODES = (400, 401, 403, 404, 405, 413, 429, 500)
CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
       "frame-ancestors 'none'; img-src 'self' data:")

web = Blueprint("web", __name__, static_folder=str(PACKAGE / "static"),
                static_url_path="/assets")
login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = _l("Please sign in to continue.")
login_manager.login_message_category = "info"
login_manager.localize_callback = str  # resolves the lazy message in the request's language
# the session is dropped when it reappears from another browser or address
login_manager.session_protection = "strong"


def page(rule: str, methods: Sequence[str] = ("GET",)) -> Callable:
    """Register a page under ``rule`` as the request's one commit point
    (qms.context.request_transaction): a posted form commits what it wrote once the page has
    answered, unless the answer went through ``refuse``; a GET never commits. What must wait
    for the commit (a sign-in, a message for the user) goes through qms.context.after_commit."""
    def decorator(view: Callable) -> Callable:
        web.add_url_rule(rule, view_func=request_transaction(view), methods=list(methods))
        return view
    return decorator


def refuse(*answer: Any) -> NoReturn:
    """Answer with ``answer`` (a page or a redirect, with its status and headers), keeping
    nothing the request wrote: the answer leaves the view as an exception, so the request's
    transaction rolls back, as an API refusal's does. A refusal whose writes must be kept
    (a failed credential check) is returned instead."""
    abort(make_response(*answer))


def init_web(app: Flask) -> None:
    CSRFProtect(app)
    login_manager.init_app(app)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["APP_DEFAULT_LOCALE"])
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(PACKAGE / "translations"))
    Babel(app, locale_selector=select_locale)
    from qms.web import auth_views, views  # noqa: F401  (routes)

    app.register_blueprint(web)
    app.after_request(add_security_headers)
    for code in ERROR_PAGE_CODES:
        app.register_error_handler(code, error_page)
    app.register_error_handler(DomainError, domain_error_page)
    app.jinja_env.globals.update(site_name=lambda: current_app.config["APP_SITE_NAME"],
                                 may=user_may, current_locale=select_locale)


def select_locale() -> str:
    """The user's choice, else the browser's preference among LOCALES, else the default."""
    chosen = session.get(LOCALE_KEY)
    if chosen in LOCALES:
        return chosen
    for tag, _quality in request.accept_languages:
        supported = supported_locale(tag)
        if supported:
            return supported
    return current_app.config["APP_DEFAULT_LOCALE"]


def supported_locale(tag: str) -> str | None:
    """Map a browser language tag (en-GB, zh-CN, zh-Hans) to a UI locale; Traditional
    Chinese is not offered, so zh-TW/zh-HK/zh-Hant fall through to the next preference."""
    parts = tag.lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh" and not {"hant", "tw", "hk", "mo"} & set(parts[1:]):
        return "zh_Hans_CN"
    return None


def user_may(permission: str) -> bool:
    return current_user.is_authenticated and \
        state().security.roles.allows(current_user.roles, permission)


@web.before_request
def guard_session():
    """Every web page except the open ones needs a live session; an idle one ends here, and
    a temporary or expired password allows nothing but changing it."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return require_sign_in()
    if session_idle():
        return end_idle_session()
    session[LAST_ACTIVITY] = int(time.time())
    if password_change_due(state().security, current_user.record) and \
            request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        return redirect(url_for("web.change_password"))  # the page says why
    return None


def require_sign_in():
    if request.method == "GET":
        return login_manager.unauthorized()  # flashes, and returns here after sign-in
    # a form posted from an ended session: replaying it after sign-in would surprise
    return redirect(url_for("web.login"))


def session_idle() -> bool:
    last = session.get(LAST_ACTIVITY)
    limit = current_app.config["SECURITY_SESSION_IDLE_MINUTES"] * 60
    # a session without a timestamp cannot prove it is fresh
    return not isinstance(last, int) or time.time() - last > limit


def end_idle_session():
    from qms.web.auth_views import end_session

    user_id = current_user.record.id
    close_db_session()  # a GET holds a read transaction; the logout event needs a writer
    with state().db.unit_of_work() as writer:
        record_logout(writer, writer.get(User, user_id), why="idle timeout")
    end_session()
    minutes = current_app.config["SECURITY_SESSION_IDLE_MINUTES"]
    flash(_("You were signed out after %(minutes)d minutes without activity.",
            minutes=minutes), "warning")
    target = request.full_path if request.method == "GET" else None
    return redirect(url_for("web.login", next=target))


def add_security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if current_app.config["SECURITY_SECURE_COOKIES"]:
        # the site is served over HTTPS only: tell browsers never to try plain HTTP
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        # pages show GMP records: keep them out of shared and back-button caches
        response.headers["Cache-Control"] = "no-store"
    return response


def error_page(error: HTTPException):
    if request.path.startswith("/api/"):
        from qms.api import http_error  # the API answers problem+json, even for unknown URLs

        return http_error(error)
    return render_template("error.html", status=error.code, title=error_title(error.code),
                           detail=None), error.code


def domain_error_page(error: DomainError):
    return render_template("error.html", status=error.status, title=error_title(error.status),
                           detail=error.detail), error.status, error.headers


def error_title(status: int | None) -> str:
    titles = {400: _l("The request could not be processed. If you submitted a form, reload "
                      "the page and try again."),
              401: _l("Please sign in."),
              403: _l("You do not have permission to open this page."),
              404: _l("This page does not exist."),
              405: _l("This action is not available here."),
              409: _l("The record is not in a state that allows this."),
              413: _l("The upload is too large."),
              422: _l("The input is not valid."),
              423: _l("The account is locked."),
              429: _l("Too many requests. Wait a moment and try again.")}
    return str(titles.get(status, _l("Something went wrong on the server. The error has "
                                     "been logged; nothing was saved.")))
