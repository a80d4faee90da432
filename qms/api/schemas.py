"""Request and response schemas shared by the API modules (OpenAPI components)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

USERNAME = fields.String(required=True, validate=validate.Length(min=1, max=150))
PASSWORD = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class TokenRequest(Schema):
    username = USERNAME
    password = PASSWORD
    name = fields.String(load_default="", validate=validate.Length(max=200))


class TokenResponse(Schema):
    token = fields.String(required=True)
    token_id = fields.Integer()
    expires_at = fields.DateTime(required=True)


class TokenInfo(Schema):
    token_id = fields.Integer(attribute="id")
    prefix = fields.String()
    name = fields.String()
    kind = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class PasswordChangeRequest(Schema):
    username = USERNAME
    old_password = PASSWORD
    new_password = PASSWORD


class Reason(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class Health(Schema):
    status = fields.String(required=True)
    version = fields.String()
    database = fields.String()
    audit_head = fields.Dict()


class PublicKeyOut(Schema):
    """An Ed25519 public key; key_id = first 16 hex of sha256 of the raw 32 bytes."""
    key_id = fields.String()
    algorithm = fields.String()
    public_key_b64 = fields.String()
    public_key_pem = fields.String()


class SigningKeyInfo(PublicKeyOut):
    created_at = fields.DateTime()
    retired_at = fields.DateTime(allow_none=True)


class UserKeys(Schema):
    username = fields.String()
    full_name = fields.String()
    keys = fields.List(fields.Nested(SigningKeyInfo))
