"""Public signing keys, so that anyone can verify a signature independently."""
from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from qms.api import api
from qms.api.schemas import UserKeys
from qms.api.spec import endpoint
from qms.context import db_session
from qms.errors import NotFound
from qms.esign.keys import SigningKey, keys_of
from qms.identity.authentication import find_user


def key_document(key: SigningKey) -> dict:
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return {"key_id": key.key_id, "algorithm": "Ed25519",
            "public_key_b64": base64.b64encode(key.public_key).decode(),
            "public_key_pem": pem, "created_at": key.created_at, "retired_at": key.retired_at}


@endpoint(api, "/users/<username>/keys", "GET", summary="A user's signing public keys",
          tag="esign", permission="record.read", response=UserKeys, errors=(404,))
def user_keys(username: str):
    """Every key the user ever had, retired ones included, so old signatures stay verifiable."""
    session = db_session()
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return UserKeys().dump({"username": user.username, "full_name": user.full_name,
                            "keys": [key_document(k) for k in keys_of(session, user.id)]})
