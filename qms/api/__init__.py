"""The public REST API under /api/v1 (DESIGN.md "Public REST API")."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from audit.canonical import CanonicalError
from audit.checkpoints import SigningKeyMissing
from qms.api.problems import problem
from qms.api.spec import text_problem
from qms.context import SAFE_METHODS, db_session, state
from qms.errors import (AuditKeyMissing, Conflict, DomainError, InvalidInput,
                        PasswordChangeRequired)
from qms.identity.authentication import password_change_due
from qms.esign.service import end_look_ahead, verify_ahead
from qms.identity.tokens import needs_touch, resolve_token, touch

api = Blueprint("api", __name__, url_prefix="/api/v1")

# endpoints a user with a temporary or expired password may still call
PASSWORD_CHANGE_ALLOWED = {"api.change_password_post", "api.health_get",
                           "api.issue_token_post"}


def init_api(app: Flask) -> None:
    # the release check first, where init_release used to add it (the OpenAPI order)
    from qms.release import api as release_api  # noqa: F401  (routes)
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


def bearer_secret() -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


@api.before_request
def sign_ahead() -> None:
    """A signed transition gets its slow work (argon2, scrypt) done first, on a reader,
    before anything opens the request's writer (qms.esign.service.verify_ahead). Registered
    before authenticate_bearer, whose token lookup opens that writer. Only for the token
    holder's own signature (nobody else can sign), and only once every check that needs no
    password has passed (qms.records.api.signable_but_for_the_password): nobody gets
    hashing done for a request that is refused anyway."""
    from qms.records.api import signable_but_for_the_password  # it imports this module

    secret = bearer_secret()
    credentials = signature_credentials() if secret is not None else None
    if credentials is None:
        return
    app_state = state()
    with app_state.db.reading() as reader:
        token = resolve_token(reader, secret, idle_limit=app_state.security.token_idle)
        if token is None or token.user.username != credentials[0]:
            return
        if signable_but_for_the_password(reader, token.user):
            verify_ahead(reader, app_state.security, *credentials)


api.teardown_request(end_look_ahead)  # the look-ahead's rate-limit admission ends with the request


def signature_credentials() -> tuple[str, str] | None:
    """(username, password) of a write request's ``signature`` member, if it has one."""
    if request.method in SAFE_METHODS:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # too deeply nested: the endpoint refuses it with a 422
        return None
    signature = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(signature, dict):
        return None
    username, password = signature.get("username"), signature.get("password")
    if not (isinstance(username, str) and isinstance(password, str) and username and password):
        return None
    if text_problem(username) or text_problem(password):
        return None  # e.g. a lone surrogate, which cannot even be hashed: the endpoint's 422
    return username, password


@api.before_request
def authenticate_bearer() -> None:
    g.api_user = None
    secret = bearer_secret()
    if secret is None:
        return
    security = state().security
    token = resolve_token(db_session(), secret, idle_limit=security.token_idle)
    if token is None:
        return
    g.api_user, g.api_token = token.user, token
    record_token_use(token)
    if password_change_due(state().security, token.user) and \
            request.endpoint not in PASSWORD_CHANGE_ALLOWED:
        raise PasswordChangeRequired("the password is temporary or expired; change it with "
                                     "POST /api/v1/auth/password")


def record_token_use(token) -> None:
    """Restart the token's idle clock. A write request records it in its own transaction
    (which already holds the writer); a read records it in a short writer of its own, at most
    once a minute per token, so reads stay reads."""
    if not needs_touch(token):
        return
    if request.method not in SAFE_METHODS:
        touch(db_session(), token.id)
        return
    with state().db.unit_of_work() as writer:
        touch(writer, token.id)


@api.errorhandler(DomainError)
def domain_error(error: DomainError):
    response = problem(error.status, error.title, error.detail, code=error.code,
                       errors=error.errors, **error.extra)
    response.headers.update(error.headers)
    return response


@api.errorhandler(SigningKeyMissing)
def audit_key_missing(error: SigningKeyMissing):
    """A clear answer, not a 500, when the checkpoint key file is gone (never re-created)."""
    return domain_error(AuditKeyMissing(str(error)))


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
