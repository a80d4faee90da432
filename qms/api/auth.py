"""Authentication endpoints: API tokens and password change."""
from __future__ import annotations

from datetime import timedelta

from flask import g
from sqlalchemy import select

from qms.api import api
from qms.api.schemas import PasswordChangeRequest, Reason, TokenInfo, TokenRequest, TokenResponse
from qms.api.spec import endpoint
from qms.context import db_session, release_write_lock, state
from qms.errors import NotFound, PasswordChangeRequired, keeping_writes
from qms.identity import password_change, tokens
from qms.identity.authentication import check_credentials, password_change_due
from qms.identity.models import ApiToken


@endpoint(api, "/auth/tokens", "POST", summary="Issue an API token (8 h) for a user",
          tag="auth", public=True, body=TokenRequest, response=TokenResponse, status=201,
          errors=(401, 403, 422, 423, 429))
def issue_token(body):
    """Exchange username and password for a bearer token. Failed attempts count toward
    lockout. A user whose password is temporary or expired must change it first."""
    session, security = db_session(), state().security
    check = check_credentials(session, security, body["username"], body["password"],
                              purpose="token")
    user = check.raise_for_failure()  # the failure count, lockout and audit event are kept
    if password_change_due(security, user):  # the check that passed is kept too
        raise keeping_writes(PasswordChangeRequired(
            "the password is temporary or expired; change it with POST /api/v1/auth/password"))
    secret, row = tokens.issue_token(session, actor=user.username, user=user,
                                     lifetime=timedelta(hours=security.token_hours),
                                     kind="user", name=body["name"])
    return TokenResponse().dump({"token": secret, "token_id": row.id,
                                 "expires_at": row.expires_at}), 201


@endpoint(api, "/auth/tokens", "GET", summary="List the caller's tokens", tag="auth",
          response=TokenInfo, many=True)
def list_tokens():
    return TokenInfo(many=True).dump(tokens.tokens_of(db_session(), g.api_user))


@endpoint(api, "/auth/tokens/<int:token_id>", "DELETE", summary="Revoke one of the caller's tokens",
          tag="auth", body=Reason, status=204, errors=(404, 409))
def revoke_own_token(token_id: int, body):
    session = db_session()
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id,
                                                  ApiToken.user_id == g.api_user.id))
    if token is None:
        raise NotFound(f"no token {token_id} of yours")
    tokens.revoke_token(session, actor=g.api_user.username, token=token, reason=body["reason"])
    return "", 204


@endpoint(api, "/auth/password", "POST", summary="Change a password (also a temporary one)",
          tag="auth", public=True, body=PasswordChangeRequest, status=204,
          errors=(401, 409, 422, 423, 429))
def change_password(body):
    """The only call a user with a temporary or expired password can make. The old
    password is checked like a login (failures count toward lockout). 409 when the
    password or the signing key changed while the new one was being prepared."""
    session, security = db_session(), state().security
    release_write_lock()  # a bearer token sent along was looked up by the request's writer
    prepared, check = password_change.prepare_and_check(
        session, security, body["username"], body["old_password"], body["new_password"])
    user = check.raise_for_failure()  # a wrong old password is counted, and kept
    password_change.change_password(session, user, prepared)
    return "", 204

