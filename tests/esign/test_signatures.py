"""Signing at the service level with real argon2id, scrypt and Ed25519: the signed bytes,
verification, manifestation, segregation of duties, and every kind of refusal."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from audit import trail
from audit.canonical import canonical_bytes
from qms.errors import (AccountLocked, InvalidInput, NotPermitted, SegregationOfDuties,
                        SignatureRefused, must_commit_before_raise)
from qms.esign import keys
from qms.esign.models import Signature
from qms.esign.service import (manifestation, not_author, require_distinct, sign_record,
                               verify_signature, verify_stored_signature)
from qms.identity.authentication import find_user
from qms.identity.models import UserRole
from qms.records.models import RecordVersion
from qms.records.service import current_content_hash


def _sign(app, session, number: str, username: str, password: str, *, meaning="reviewed",
          permission="document.review", segregation=()):
    state = app.extensions["qms"]
    user = find_user(session, username)
    from qms.documents.models import Document

    document = session.scalar(select(Document).where(Document.number == number))
    return sign_record(session, state.security, user=user,
                       credentials={"username": username, "password": password,
                                    "meaning": meaning},
                       record_type="document", record_id=number, record_version=document.version,
                       content_hash=current_content_hash(document), required_meaning="reviewed",
                       required_permission=permission, segregation=segregation)


def _version(session, number: str, version: int) -> RecordVersion:
    return session.scalar(select(RecordVersion).where(RecordVersion.record_id == number,
                                                      RecordVersion.version == version))


def test_signature_is_ed25519_over_the_canonical_payload(app, review_target):
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        signature = _sign(app, session, review_target.number, "rick.reviewer",
                          review_target.reviewer.password)
        signature_id = signature.id
    with state.db.reading() as session:
        row = session.get(Signature, signature_id)
        payload = json.loads(row.signed_payload)
        assert set(payload) == {"at", "content_hash", "meaning", "name", "record", "signer"}
        assert payload["record"] == {"id": review_target.number, "type": "document",
                                     "version": 2}
        assert (payload["signer"], payload["name"], payload["meaning"]) == \
            ("rick.reviewer", "Rick.Reviewer", "reviewed")
        assert canonical_bytes(payload) == row.signed_payload.encode()
        key_row = session.get(keys.SigningKey, row.key_id)
        version = _version(session, review_target.number, 2)
        assert verify_signature(row, key_row.public_key, version)
        assert verify_stored_signature(session, row)
        event = trail.query_events(session, action="signature.applied")[-1]
        assert event.data == {"signature_id": row.id, "signed_payload": payload,
                              "key_id": row.key_id, "signature": row.signature}


def test_verification_fails_for_other_keys_content_or_columns(app, review_target, make_user):
    other = make_user("olly.other", "qa_reviewer")
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        row = _sign(app, session, review_target.number, "rick.reviewer",
                    review_target.reviewer.password)
        own_key = session.get(keys.SigningKey, row.key_id).public_key
        version = _version(session, review_target.number, 2)
        other_key = keys.active_key(session, find_user(session, other.username).id).public_key
        assert not verify_signature(row, other_key, version)
        assert not verify_signature(row, own_key, _version(session, review_target.number, 1))
        altered = SimpleNamespace(**{c: getattr(version, c) for c in
                                     ("record_type", "record_id", "version", "content_hash")},
                                  content=version.content.replace("1.3", "13"))
        assert not verify_signature(row, own_key, altered)
        row.name = "Someone Else"
        assert not verify_signature(row, own_key, version)
        session.rollback()


def test_manifestation_has_name_username_meaning_and_utc_offset():
    at = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=timezone(timedelta(hours=8)))
    shown = manifestation(SimpleNamespace(name="Li Wei", signer="li.wei", meaning="approved",
                                          at=at))
    assert shown["at"] == "2026-03-01T01:30:05+00:00"
    assert (shown["name"], shown["username"], shown["meaning"]) == ("Li Wei", "li.wei",
                                                                   "approved")
    assert shown["text"] == "Li Wei (li.wei), approved, 2026-03-01T01:30:05+00:00"


def test_segregation_helpers():
    record = SimpleNamespace(number="DOC-2026-00001", created_by="ann")
    not_author(record, "bob", editors=["carl"])
    with pytest.raises(SegregationOfDuties, match="ann is an author of DOC-2026-00001"):
        not_author(record, "ann")
    with pytest.raises(SegregationOfDuties):
        not_author(record, "carl", editors=["carl"])
    require_distinct("bob", {"ann"}, "why")
    with pytest.raises(SegregationOfDuties, match="the releaser inspected it"):
        require_distinct("ann", ["ann"], "the releaser inspected it")


def _refusal(app, number, username, password, **options):
    """Sign the way an endpoint does: a refusal marked commit_before_raise is committed."""
    state = app.extensions["qms"]
    session = state.db.session(write=True)
    try:
        _sign(app, session, number, username, password, **options)
    except Exception as error:  # noqa: BLE001  (the test inspects whatever was raised)
        if must_commit_before_raise(error):
            session.commit()
        return error
    finally:
        session.rollback()
        session.close()
    raise AssertionError("signing was not refused")


def _set_user(app, username, **values):
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        user = find_user(session, username)
        for name, value in values.items():
            setattr(user, name, value)


def _refusal_events(app, number):
    with app.extensions["qms"].db.reading() as session:
        return [e.data["why"] for e in trail.query_events(session, action="signature.refused",
                                                          entity_id=number)]


INELIGIBLE = [
    ("deactivated", {"active": False}, SignatureRefused, "deactivated"),
    ("temporary password", {"password_temporary": True}, SignatureRefused, "temporary"),
    ("expired password", {"password_changed_at": datetime(2020, 1, 1, tzinfo=timezone.utc)},
     SignatureRefused, "expired"),
    # locked just now: a lockout older than [security] lockout_minutes has ended
    ("locked", {"locked_at": datetime.now(timezone.utc)}, AccountLocked, "locked"),
]


@pytest.mark.parametrize("values, error_type, why", [c[1:] for c in INELIGIBLE],
                         ids=[c[0] for c in INELIGIBLE])
def test_ineligible_accounts_cannot_sign(app, review_target, values, error_type, why):
    _set_user(app, "rick.reviewer", **values)
    error = _refusal(app, review_target.number, "rick.reviewer", review_target.reviewer.password)
    assert type(error) is error_type and error.status in (403, 423)
    assert must_commit_before_raise(error)
    assert why in _refusal_events(app, review_target.number)[-1]
    with app.extensions["qms"].db.reading() as session:
        assert session.scalars(select(Signature)).all() == []


def test_admin_and_service_accounts_cannot_sign(app, review_target, make_user):
    make_user("adam.admin", "admin", "qa_reviewer")
    from qms.identity.users import create_user

    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        bot = create_user(session, state.security, actor="system", username="erp.bot",
                          full_name="ERP", roles=["erp"], password=None, service=True)
        # a signing role given to a machine before service accounts were limited to reading
        bot.role_rows.append(UserRole(role="qa_reviewer"))
    admin_error = _refusal(app, review_target.number, "adam.admin", review_target.reviewer.password)
    assert isinstance(admin_error, SignatureRefused) and admin_error.status == 403
    service_error = _refusal(app, review_target.number, "erp.bot", "any password at all")
    assert isinstance(service_error, SignatureRefused)
    assert _refusal_events(app, review_target.number) == [
        "administrators may sign no GMP record", "service accounts cannot sign"]


def test_wrong_password_counts_toward_lockout(app, review_target):
    error = _refusal(app, review_target.number, "rick.reviewer", "wrong password here")
    assert isinstance(error, SignatureRefused) and must_commit_before_raise(error)
    with app.extensions["qms"].db.reading() as session:
        assert find_user(session, "rick.reviewer").failed_attempts == 1


def test_invalid_requests_raise_before_writing(app, review_target):
    state = app.extensions["qms"]
    with state.db.session(write=True) as session:
        head = trail.head(session)
        with pytest.raises(InvalidInput) as mismatch:
            _sign(app, session, review_target.number, "rick.reviewer",
                  review_target.reviewer.password, meaning="approved")
        assert mismatch.value.errors == {"signature.meaning": [mismatch.value.detail]}
        with pytest.raises(NotPermitted):
            _sign(app, session, review_target.number, "ann.author",
                  review_target.author.password, permission="document.review")
        assert not must_commit_before_raise(mismatch.value)
        assert trail.head(session) == head
        session.rollback()


def test_segregation_refusal_is_audited(app, review_target):
    def author_check(signer):
        require_distinct(signer, {"rick.reviewer"}, "rick.reviewer wrote it")

    error = _refusal(app, review_target.number, "rick.reviewer", review_target.reviewer.password,
                     segregation=[author_check])
    assert isinstance(error, SegregationOfDuties) and must_commit_before_raise(error)
    assert _refusal_events(app, review_target.number) == ["rick.reviewer wrote it"]


def test_signature_base64_is_64_bytes(app, review_target):
    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        row = _sign(app, session, review_target.number, "rick.reviewer",
                    review_target.reviewer.password)
        assert len(base64.b64decode(row.signature)) == 64
        session.rollback()
