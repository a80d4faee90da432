"""Electronic signatures on document transitions over HTTP: refusals are audited and
committed while the record stays untouched; signatures verify with the signer's public key
and stop matching the content once it changes."""
from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import canonical_bytes


@pytest.fixture
def in_review(documents, team) -> str:
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    documents.headers(team.reviewer)  # the token exists before the measurements start
    return number


def test_wrong_password_is_refused_audited_and_counted(documents, team, in_review, record_counts,
                                                       audit_seq, audit_since, user_row):
    counts, start = record_counts(), audit_seq()
    refused = documents.transition(team.reviewer, in_review, "review", meaning="reviewed",
                                   password="not the password at all")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/signature-refused")
    assert record_counts() == counts
    assert [a for a, _, _ in audit_since(start)] == ["identity.login.failed", "signature.refused"]
    assert user_row("rita.reviewer") == (1, False)
    assert documents.get(team.reviewer, in_review).get_json()["state"] == "in_review"


def test_five_wrong_passwords_lock_the_signer(documents, team, in_review, audit_seq,
                                              audit_since, record_counts, user_row,
                                              chain_intact):
    counts, start = record_counts(), audit_seq()
    statuses = [documents.transition(team.reviewer, in_review, "review", meaning="reviewed",
                                     password=f"wrong password {n}").status_code
                for n in range(4)]
    # one address may fail only four times at an account: the fifth failure comes from another
    documents.client.environ_base["REMOTE_ADDR"] = "192.0.2.2"
    statuses.append(documents.transition(team.reviewer, in_review, "review", meaning="reviewed",
                                         password="wrong password 4").status_code)
    assert statuses == [403, 403, 403, 403, 423]
    assert user_row("rita.reviewer") == (5, True)
    actions = [a for a, _, _ in audit_since(start)]
    assert actions.count("signature.refused") == 5 and "identity.user.locked" in actions
    assert record_counts() == counts
    # a locked account's token no longer authenticates
    locked_out = documents.transition(team.reviewer, in_review, "review", meaning="reviewed")
    assert locked_out.status_code == 401
    assert chain_intact()


def test_meaning_mismatch_is_invalid_and_writes_nothing(documents, team, in_review, db_snapshot):
    before = db_snapshot()
    wrong = documents.transition(team.reviewer, in_review, "review", meaning="approved")
    assert wrong.status_code == 422
    assert "signature.meaning" in wrong.get_json()["errors"]
    assert db_snapshot() == before


def test_signing_as_someone_else_is_refused(documents, team, in_review, make_user, record_counts,
                                           audit_seq, audit_since, user_row):
    make_user("rob.reviewer", "qa_reviewer")
    counts, start = record_counts(), audit_seq()
    refused = documents.transition(team.reviewer, in_review, "review", meaning="reviewed",
                                   username="rob.reviewer")
    assert refused.status_code == 403
    assert [a for a, _, _ in audit_since(start)] == ["signature.refused"]
    assert user_row("rob.reviewer") == (0, False)
    assert record_counts() == counts


def test_admin_cannot_sign(documents, team, in_review, make_user, record_counts, audit_seq,
                           audit_since):
    dual = make_user("dora.dual", "admin", "qa_reviewer")
    pure = make_user("root.admin", "admin")
    documents.headers(dual), documents.headers(pure)
    counts, start = record_counts(), audit_seq()
    refused = documents.transition(dual, in_review, "review", meaning="reviewed")
    assert refused.status_code == 403 and "administrators" in refused.get_json()["detail"]
    assert [(a, actor) for a, actor, _ in audit_since(start)] == [("signature.refused",
                                                                  "dora.dual")]
    not_permitted = documents.transition(pure, in_review, "review", meaning="reviewed")
    assert not_permitted.status_code == 403
    assert not_permitted.get_json()["type"].endswith("/not-permitted")
    assert record_counts() == counts


def test_deactivated_user_cannot_reach_signing(app, documents, team, in_review):
    from qms.identity.authentication import find_user
    from qms.identity.users import deactivate_user

    state = app.extensions["qms"]
    with state.db.unit_of_work() as session:
        deactivate_user(session, actor="system", user=find_user(session, "rita.reviewer"),
                        reason="left the company")
    refused = documents.transition(team.reviewer, in_review, "review", meaning="reviewed")
    assert refused.status_code == 401


def test_author_cannot_approve_own_document(documents, make_user, team, record_counts,
                                           audit_seq, audit_since):
    author = make_user("alex.author", "qa_approver")
    number = documents.create_number(author)
    submitted = documents.transition(author, number, "submit")
    assert submitted.status_code == 200
    assert documents.transition(team.reviewer, number, "review",
                                meaning="reviewed").status_code == 200
    counts, start = record_counts(), audit_seq()
    refused = documents.transition(author, number, "approve", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/segregation-of-duties")
    assert [a for a, _, _ in audit_since(start)] == ["signature.refused"]
    assert record_counts() == counts
    assert documents.get(author, number).get_json()["state"] == "reviewed"


def test_editor_cannot_review(documents, make_user, team):
    editor = make_user("eve.editor", "qa_reviewer")
    number = documents.create_number(team.author)
    assert documents.patch(editor, number, {"title": "Better title"},
                           reason="wording").status_code == 200
    documents.to_state(team, number, "in_review")
    refused = documents.transition(editor, number, "review", meaning="reviewed")
    assert refused.status_code == 403 and "author" in refused.get_json()["detail"]


def test_reviewer_cannot_also_approve(documents, make_user, team):
    both = make_user("bo.both", "qa_reviewer", "qa_approver")
    number = documents.create_number(team.author)
    documents.to_state(team, number, "in_review")
    assert documents.transition(both, number, "review", meaning="reviewed").status_code == 200
    refused = documents.transition(both, number, "approve", meaning="approved")
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == (f"bo.both signed {number} as reviewed and may not "
                                            "also sign it as approved")
    assert documents.transition(team.approver, number, "approve",
                                meaning="approved").status_code == 200


def test_signature_verifies_with_public_key_until_content_changes(documents, team,
                                                                  chain_intact):
    number = documents.create_number(team.author)
    reviewed = documents.to_state(team, number, "reviewed")
    signature = reviewed["signatures"][0]
    keys = documents.client.get("/api/v1/users/rita.reviewer/keys",
                                headers=documents.headers(team.auditor)).get_json()["keys"]
    key = next(k for k in keys if k["key_id"] == signature["key_id"])
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key_b64"]))
    payload = {"at": signature["at"], "content_hash": signature["content_hash"],
               "meaning": signature["meaning"], "name": signature["name"],
               "record": {"id": number, "type": "document",
                          "version": signature["record_version"]},
               "signer": signature["signer"]}
    assert canonical_bytes(payload) == signature["signed_payload"].encode()
    public.verify(base64.b64decode(signature["signature"]), canonical_bytes(payload))

    versions = documents.history(team.auditor, number).get_json()["versions"]
    signed_version = versions[signature["record_version"] - 1]
    assert signed_version["version"] == signature["record_version"] == 3
    assert hashlib.sha256(_canonical_content(signed_version)).hexdigest() == \
        signature["content_hash"]

    assert documents.transition(team.approver, number, "return",
                                reason="scope missing").status_code == 200
    assert documents.patch(team.author, number, {"summary": "Now with the scope."},
                           reason="add scope").status_code == 200
    history = documents.history(team.auditor, number).get_json()
    assert history["changed_since_signing"] is True and history["version"] == 5
    old = history["signatures"][0]
    assert old["record_version"] == 3 and old["valid_for_current_version"] is False
    assert old["verified"] is True  # still valid for the version it signed
    current = {**payload, "content_hash": history["content_hash"],
               "record": {**payload["record"], "version": history["version"]}}
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(signature["signature"]), canonical_bytes(current))
    record = documents.get(team.author, number).get_json()
    assert record["changed_since_signing"] is True
    assert record["signatures"][0]["valid_for_current_version"] is False
    assert chain_intact()


def _canonical_content(version: dict) -> bytes:
    return canonical_bytes(version["content"])
