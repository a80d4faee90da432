"""A signing key is only ever sealed under a password of the user's own (issue 9, point 2).

The attacker of these tests knew a temporary password (the administrator who chose it, or
whoever read it over their shoulder) and holds a copy of the signing_keys rows taken while it
was in force (a backup). Whatever they can open with it must not be the key that signs the
user's next signature, nor produce that signature. Real argon2id, scrypt and Ed25519.
"""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text

from qms.documents.models import Document
from qms.esign import keys
from qms.esign.models import Signature
from qms.esign.service import sign_record
from qms.identity.authentication import find_user, set_password
from qms.identity.users import reset_password
from qms.records.service import current_content_hash
from tests.esign.conftest import document_in_review

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
                       temporary_password=state.security.hash_password(TEMPORARY),
                       reason="forgotten")
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


def _user_of_an_earlier_version(app, username: str) -> keys.SigningKey:
    """A user as earlier versions left them: the key created under the temporary password,
    re-wrapped when the user chose their own, then flagged as migration 0011 flags every
    active key. Returns the backup copy of the key from the temporary password's time."""
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        user_id = find_user(session, username).id
        keys.create_signing_key(session, user_id, TEMPORARY, state.security.key_wrap_log_n)
    [backup] = _backup_of_keys(app, username)
    with state.db.unit_of_work() as session:
        user = find_user(session, username)
        key = keys.active_key(session, user.id)
        keys.store_seal(key, keys.resealed(key, TEMPORARY, OWN))
        set_password(session, user, state.security.hasher.hash(OWN), temporary=False)
        key.replace_before_signing = True
    return backup


def _sign_via_api(client, headers, number: str, action: str, meaning: str,
                  version: int) -> None:
    body = {"action": action, "version": version,
            "signature": {"username": "tom", "password": OWN, "meaning": meaning}}
    response = client.post(f"/api/v1/documents/{number}/transitions", json=body,
                           headers=headers)
    assert response.status_code == 200, response.get_json()


def _signatures(app, number: str) -> list[tuple[bytes, bytes, str]]:
    with app.extensions["qms"].db.reading() as session:
        rows = session.scalars(select(Signature).where(Signature.record_id == number)
                               .order_by(Signature.id))
        return [(r.signed_payload.encode(), base64.b64decode(r.signature), r.key_id)
                for r in rows]


def _key_replacements(app) -> list[dict]:
    with app.extensions["qms"].db.engine.connect() as connection:
        texts = connection.scalars(text("SELECT canonical FROM audit_events WHERE action = "
                                        "'esign.key.replaced' ORDER BY seq")).all()
    return [json.loads(canonical) for canonical in texts]


def test_a_key_from_an_earlier_version_is_replaced_before_it_signs(
        app, client, make_user, auth_headers, review_target):
    """The attack on keys left by earlier versions: the backup's key opens with the
    temporary password, but the user's next signature (through the API, so the key was
    unwrapped ahead of the transaction too) is made by a new key, and so is the one after."""
    tom = make_user("tom", "qa_reviewer", password=TEMPORARY, temporary=True)
    backup = _user_of_an_earlier_version(app, "tom")
    recovered = _recover([backup], TEMPORARY)
    assert len(recovered) == 1  # the attacker holds a working copy of the old key
    tom.password = OWN
    headers = auth_headers(tom)
    _sign_via_api(client, headers, review_target.number, "review", "reviewed", 2)
    [(signed, signature, key_id)] = _signatures(app, review_target.number)
    assert key_id != backup.key_id
    _assert_recovered_keys_cannot_sign(recovered, signed, signature, key_id)
    [event] = _key_replacements(app)
    assert (event["actor"], event["entity"]) == ("tom", {"id": "tom", "type": "user"})
    assert (event["data"]["old_key_id"], event["data"]["new_key_id"]) == (backup.key_id, key_id)
    listed = _assert_signed_by_published_key(client, auth_headers, make_user, "tom", signed,
                                             signature, key_id)
    old = next(k for k in listed if k["key_id"] == backup.key_id)
    assert old["retired_at"] is not None
    assert base64.b64decode(old["public_key_b64"]) == backup.public_key
    second = document_in_review(app, review_target.author.username)
    _sign_via_api(client, headers, second, "review", "reviewed", 2)
    assert [k for _, _, k in _signatures(app, second)] == [key_id]
    assert len(_key_replacements(app)) == 1


def test_a_password_change_replaces_a_key_from_an_earlier_version(app, client, make_user):
    """The flagged key is not re-sealed under the new password (the backup would still open
    the same key); it is retired and a new one is created under the new password."""
    make_user("tom", "qa_reviewer", password=TEMPORARY, temporary=True)
    backup = _user_of_an_earlier_version(app, "tom")
    newer = "his second own secret 8"
    _change_password(client, "tom", OWN, newer)
    rows = {row.key_id: row for row in _backup_of_keys(app, "tom")}
    assert rows[backup.key_id].retired_at is not None
    assert rows[backup.key_id].wrapped_private_key is None
    [active] = [row for row in rows.values() if row.retired_at is None]
    assert not active.replace_before_signing
    keys.unwrap(active, newer)  # sealed under the new password
    assert not _recover([active], TEMPORARY) and not _recover([active], OWN)
    [event] = _key_replacements(app)
    assert (event["data"]["old_key_id"], event["data"]["new_key_id"]) == \
        (backup.key_id, active.key_id)
