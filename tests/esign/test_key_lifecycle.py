"""A signing key is only ever sealed under a password of the user's own (issue 9, point 2).

The attacker of these tests knew a temporary password (the administrator who chose it, or
whoever read it over their shoulder) and holds a copy of the signing_keys rows taken while it
was in force (a backup). Whatever they can open with it must not be the key that signs the
user's next signature, nor produce that signature. Real argon2id, scrypt and Ed25519.
"""
from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from qms.documents.models import Document
from qms.esign import keys
from qms.esign.models import Signature
from qms.esign.service import sign_record
from qms.identity.authentication import find_user
from qms.identity.users import reset_password
from qms.records.service import current_content_hash

TEMPORARY = "temporary-pass-123"
OWN = "a secret only he knows 7"


def _backup_of_keys(app, username: str) -> list[keys.SigningKey]:
    """The user's signing_keys rows as a backup holds them (detached copies of every column)."""
    with app.extensions["qms"].db.reading() as session:
        user_id = find_user(session, username).id
        rows = session.execute(select(keys.SigningKey.__table__)
                               .where(keys.SigningKey.user_id == user_id)).mappings().all()
    return [keys.SigningKey(**row) for row in rows]


def _recover(backup: list[keys.SigningKey], password: str) -> list[Ed25519PrivateKey]:
    """Every private key in the backup that opens with ``password``."""
    recovered = []
    for row in backup:
        try:
            recovered.append(keys.unwrap(row, password))
        except keys.KeyUnwrapError:
            pass
    return recovered


def _change_password(client, username: str, old: str, new: str) -> None:
    response = client.post("/api/v1/auth/password",
                           json={"username": username, "old_password": old, "new_password": new})
    assert response.status_code == 204, response.get_json()


def _review(app, number: str, username: str, password: str) -> tuple[bytes, bytes, str]:
    """Sign the document as reviewed; (signed bytes, signature, key id)."""
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        document = session.scalar(select(Document).where(Document.number == number))
        signature = sign_record(
            session, state.security, user=find_user(session, username),
            credentials={"username": username, "password": password, "meaning": "reviewed"},
            record_type="document", record_id=number, record_version=document.version,
            content_hash=current_content_hash(document), required_meaning="reviewed",
            required_permission="document.review")
        signature_id = signature.id
    with state.db.reading() as session:
        row = session.get(Signature, signature_id)
        return row.signed_payload.encode(), base64.b64decode(row.signature), row.key_id


def _assert_recovered_keys_cannot_sign(recovered, signed: bytes, signature: bytes,
                                       key_id: str) -> None:
    for private in recovered:
        public = private.public_key()
        assert keys.key_id_for(keys.raw_public_key(public)) != key_id
        assert private.sign(signed) != signature  # Ed25519 is deterministic
        with pytest.raises(InvalidSignature):
            public.verify(signature, signed)


def _assert_signed_by_published_key(client, auth_headers, make_user, username, signed,
                                    signature, key_id) -> list[dict]:
    listed = client.get(f"/api/v1/users/{username}/keys",
                        headers=auth_headers(make_user("audra", "auditor"))).get_json()["keys"]
    [key] = [k for k in listed if k["key_id"] == key_id]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key_b64"])).verify(
        signature, signed)
    return listed


def test_a_key_recovered_with_the_temporary_password_is_not_the_one_that_signs(
        app, client, make_user, auth_headers, review_target):
    make_user("tom", "qa_reviewer", password=TEMPORARY, temporary=True)
    backup = _backup_of_keys(app, "tom")
    recovered = _recover(backup, TEMPORARY)
    _change_password(client, "tom", TEMPORARY, OWN)
    signed, signature, key_id = _review(app, review_target.number, "tom", OWN)
    _assert_recovered_keys_cannot_sign(recovered, signed, signature, key_id)
    assert backup == []  # no key exists while only the temporary password does
    listed = _assert_signed_by_published_key(client, auth_headers, make_user, "tom", signed,
                                             signature, key_id)
    assert [k["retired_at"] for k in listed] == [None]


def test_after_an_admin_reset_the_temporary_password_opens_no_key_that_signs(
        app, client, make_user, auth_headers, review_target):
    tom = make_user("tom", "qa_reviewer", password=OWN)
    first = _backup_of_keys(app, "tom")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        reset_password(session, state.security, actor="admin", user=find_user(session, "tom"),
                       temporary_password=TEMPORARY, reason="forgotten")
    backup = _backup_of_keys(app, "tom")
    recovered = _recover(backup, TEMPORARY)
    new_own = "his second own secret 8"
    _change_password(client, "tom", TEMPORARY, new_own)
    signed, signature, key_id = _review(app, review_target.number, "tom", new_own)
    _assert_recovered_keys_cannot_sign(recovered, signed, signature, key_id)
    assert key_id != first[0].key_id and tom.password == OWN
    # the backup holds only the retired key, which no password opens any more
    assert [row.key_id for row in backup] == [first[0].key_id]
    assert backup[0].retired_at is not None and backup[0].wrapped_private_key is None
    listed = _assert_signed_by_published_key(client, auth_headers, make_user, "tom", signed,
                                             signature, key_id)
    assert [(k["key_id"], k["retired_at"] is None) for k in listed] == \
        [(first[0].key_id, False), (key_id, True)]


def test_a_key_left_sealed_under_a_temporary_password_is_replaced_at_the_change(
        app, client, make_user, review_target):
    """Rows written before keys waited for the user's own password: the first change of a
    temporary password retires such a key instead of re-sealing it."""
    make_user("tom", "qa_reviewer", password=TEMPORARY, temporary=True)
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        keys.create_signing_key(session, find_user(session, "tom").id, TEMPORARY,
                                state.security.key_wrap_log_n)
    recovered = _recover(_backup_of_keys(app, "tom"), TEMPORARY)
    assert recovered  # the attacker holds a working key
    _change_password(client, "tom", TEMPORARY, OWN)
    signed, signature, key_id = _review(app, review_target.number, "tom", OWN)
    _assert_recovered_keys_cannot_sign(recovered, signed, signature, key_id)
    [retired] = [row for row in _backup_of_keys(app, "tom") if row.retired_at is not None]
    assert retired.wrapped_private_key is None
    assert retired.retired_reason == "sealed under a temporary password"
