"""The public REST API under /api/v1 (DESIGN.md "Public REST API")."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from audit.canonical import CanonicalError
from qms.api.problems import problem
from qms.context import db_session, state
from qms.errors import Conflict, DomainError, InvalidInput, PasswordChangeRequired
from qms.identity.authentication import password_change_due
from qms.identity.tokens import resolve_token

api = Blueprint("api", __name__, url_prefix="/api/v1")

# endpoints a user with a temporary or expired password may still call
PASSWORD_CHANGE_ALLOWED = {"api.change_password_post", "api.health_get",
                           "api.issue_token_post"}


def init_api(app: Flask) -> None:
    from qms.api import audit_api, auth, health, openapi, users  # noqa: F401  (routes)
    from qms.capa import api as capa_api  # noqa: F401  (routes)
    from qms.change_control import api as change_control_api  # noqa: F401  (routes)
    from qms.deviations import api as deviations_api  # noqa: F401  (routes)
    from qms.documents import api as documents_api  # noqa: F401  (routes)
    from qms.erp import api as erp_api  # noqa: F401  (routes)
    from qms.inspection import api as inspection_api  # noqa: F401  (routes)
    from qms.materials import api as materials_api  # noqa: F401  (routes)

    app.register_blueprint(api)
    app.register_error_handler(HTTPException, _routing_error)
    # the API authenticates with bearer tokens, never cookies, so CSRF does not apply
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api)


@api.before_request
def authenticate_bearer() -> None:
    g.api_user = None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return
    token = resolve_token(db_session(), header.removeprefix("Bearer ").strip())
    if token is None:
        return
    g.api_user, g.api_token = token.user, token
    if password_change_due(state().security, token.user) and \
            request.endpoint not in PASSWORD_CHANGE_ALLOWED:
        raise PasswordChangeRequired("the password is temporary or expired; change it with "
                                     "POST /api/v1/auth/password")


@api.errorhandler(DomainError)
def domain_error(error: DomainError):
    return problem(error.status, error.title, error.detail, code=error.code,
                   errors=error.errors, **error.extra)


@api.errorhandler(IntegrityError)
def concurrent_duplicate(error: IntegrityError):
    """Two requests creating the same code or number at once: the services check first, so
    only a race reaches the unique index. The loser gets 409 and retries; anything else is a
    server fault. The transaction is rolled back at teardown either way."""
    if not is_unique_violation(error):
        raise error
    return problem(Conflict.status, Conflict.title, "another request created the same "
                   "identifier at the same time; reload and try again", code=Conflict.code)


def is_unique_violation(error: IntegrityError) -> bool:
    if getattr(error.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(error.orig)  # SQLite


@api.errorhandler(CanonicalError)
def unencodable_input(error: CanonicalError):
    """A value the audit trail cannot encode is the client's input, not a server fault; the
    request's transaction is rolled back at teardown, so nothing of it is stored."""
    # qms.api.spec.refuse_unfit_input should have refused it first: log the gap
    current_app.logger.warning("input reached the audit trail unchecked: %s", error)
    return problem(InvalidInput.status, InvalidInput.title, str(error), code=InvalidInput.code)


@api.errorhandler(HTTPException)
def http_error(error: HTTPException):
    """The HTTP error as problem+json, keeping the headers it carries: Allow on a 405
    (RFC 9110 requires it), Retry-After on a 429."""
    response = problem(error.code or 500, error.name, error.description or error.name,
                       code=error.name.lower().replace(" ", "-"))
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _routing_error(error: HTTPException):
    """Unknown /api/ URLs answer problem+json too; other paths keep the HTML error."""
    if request.path.startswith(api.url_prefix + "/"):
        return http_error(error)
    return error
