"""Which key and which site may sign, as the chain records it (issue 9, points 5 and 8):
a key other than the first signs only after an audit.key.rotated event that the key before
it signed a checkpoint over; a checkpoint names the site that the audit.site.changed events
say was in effect at its seq. Both verifiers, the database's and the stand-alone one (with
only the export and the public keys), hold every checkpoint against them."""
from __future__ import annotations

import fcntl
import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import keys, trail, verify_export
from audit.checkpoints import EXPORT, key_id, write_checkpoint
from audit.canonical import canonical_text
from audit.export import export_jsonl
from audit.schema import audit_checkpoints
from audit.succession import (ROTATION_ACTION, SITE_CHANGE_ACTION, current_site,
                              rotation_data, site_change_data)
from audit.verify import verify_chain
from audit_test_support import SITE, append_events, as_a_forger

COPY = "site-test-copy"


@pytest.fixture
def new_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def both_keys(signing_key, new_key) -> dict:
    """The public keys a verifier is given: the first key (perhaps planted as "retired")
    and the new one."""
    return {key_id(key.public_key()): key.public_key() for key in (signing_key, new_key)}


def sign(database, key, checkpoint_file, site=SITE, purpose="routine"):
    with database.unit_of_work() as session:
        return write_checkpoint(session, signing_key=key, file_path=checkpoint_file,
                                site=site, purpose=purpose)


def record(database, action: str, data: dict) -> int:
    with database.unit_of_work() as session:
        return trail.append(session, actor="admin", action=action, data=data,
                            reason="per SOP-IT-007").seq


def rotation(database, old, new) -> int:
    return record(database, ROTATION_ACTION, rotation_data(
        key_id(old.public_key()), key_id(new.public_key()), SITE))


def verdicts(database, keys: dict, checkpoint_file: Path, closing_key, tmp_path,
             site=SITE, root: str | None = None) -> tuple[str, str, str]:
    """(database verdict, export verdict, the problems' text) for the chain as it is, the
    export closed by ``closing_key`` as `qms audit export` closes it; ``root``: the
    trusted first key's id (default: the database side takes the first checkpoint's, the
    export side the first of ``keys``)."""
    with database.engine.connect() as connection:
        result = verify_chain(connection, public_keys=keys, checkpoint_file=checkpoint_file,
                              site=site, trusted_key_id=root)
    closing = sign(database, closing_key, checkpoint_file, site=site, purpose=EXPORT)
    path = tmp_path / "export.jsonl"
    with database.reading() as session, open(path, "w", encoding="utf-8",
                                             newline="\n") as out:
        export_jsonl(session, out, closing=closing)
    outcome = verify_export.verify(str(path), keys, [str(checkpoint_file)], site, root)
    exported = "BROKEN" if outcome.problems else "INTACT" if outcome.closing else "UNANCHORED"
    text = " | ".join(list(result.problems) + [why for _seq, why in outcome.problems])
    return result.verdict, exported, text


def test_a_key_swapped_in_with_its_predecessor_planted_is_broken(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """The key file replaced and the old public key planted as retired: every signature
    verifies, but nothing in the chain hands over to the new key."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    append_events(audit_db, 2)
    sign(audit_db, new_key, checkpoint_file)
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, new_key,
                                        tmp_path)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert "which no audit.key.rotated event introduces" in text
    assert "a key swapped in, not rotated" in text


def test_a_rotation_event_the_old_key_never_signed_over_introduces_nothing(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """Whoever can write the database can append a rotation event; only the old key's
    checkpoint over it makes it a handover."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, new_key, checkpoint_file)
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, new_key,
                                        tmp_path)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert "a key swapped in, not rotated" in text


def test_the_new_key_may_not_sign_before_the_handover(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, new_key, checkpoint_file)   # too early
    with as_a_forger():  # the writer refuses the old key once the new one has signed
        sign(audit_db, signing_key, checkpoint_file)  # the old key signs over it later
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, new_key,
                                        tmp_path)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert "before the key before it handed over at seq" in text


def test_a_handed_over_rotation_verifies_on_both_sides(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """What `qms audit rotate-key` does: the rotation event, the old key's checkpoint over
    it, then the new key. Old checkpoints keep verifying under the retired key."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)
    sign(audit_db, new_key, checkpoint_file)
    append_events(audit_db, 2)
    sign(audit_db, new_key, checkpoint_file)
    assert verdicts(audit_db, both_keys, checkpoint_file, new_key, tmp_path)[:2] == (
        "INTACT", "INTACT")


def test_a_second_rotation_must_start_from_the_current_key(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    third = Ed25519PrivateKey.generate()
    keys = both_keys | {key_id(third.public_key()): third.public_key()}
    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)
    sign(audit_db, new_key, checkpoint_file)
    rotation(audit_db, new_key, third)
    sign(audit_db, new_key, checkpoint_file)
    sign(audit_db, third, checkpoint_file)
    assert verdicts(audit_db, keys, checkpoint_file, third, tmp_path)[:2] == (
        "INTACT", "INTACT")


def test_checkpoints_of_the_old_site_hold_before_a_recorded_site_change(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    """A copy of production takes its own site id: production's checkpoints stay valid for
    the events before the change, and only the new id after it."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)  # production's, inherited by the copy
    change = record(audit_db, SITE_CHANGE_ACTION, site_change_data(SITE, COPY))
    with audit_db.reading() as session:
        assert current_site(session) == COPY
    sign(audit_db, signing_key, checkpoint_file, site=COPY)
    append_events(audit_db, 1)
    database, exported, text = verdicts(audit_db, public_keys, checkpoint_file, signing_key,
                                        tmp_path, site=COPY)
    assert (database, exported) == ("INTACT", "INTACT"), text
    assert change == 5


def test_without_a_recorded_change_another_sites_checkpoints_stay_an_error(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    with audit_db.engine.connect() as connection:
        result = verify_chain(connection, public_keys=public_keys,
                              checkpoint_file=checkpoint_file, site=COPY)
    assert result.verdict == "BROKEN" and "not for this instance's site" in result.problem
    with pytest.raises(trail.AuditError, match="record a change with `qms audit set-site-id`"):
        sign(audit_db, signing_key, checkpoint_file, site=COPY)


def test_the_old_site_may_not_sign_after_the_change(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    """A process started before the change keeps the old id: it may not sign (refused at
    the source), and a checkpoint it did sign is BROKEN on both sides."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    record(audit_db, SITE_CHANGE_ACTION, site_change_data(SITE, COPY))
    with pytest.raises(trail.AuditError, match="its audit trail says 'site-test-copy'"):
        sign(audit_db, signing_key, checkpoint_file)
    stale = _signed_past_the_guard(audit_db, signing_key, checkpoint_file, SITE)
    sign(audit_db, signing_key, checkpoint_file, site=COPY)
    database, exported, text = verdicts(audit_db, public_keys, checkpoint_file, signing_key,
                                        tmp_path, site=COPY)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert f"checkpoint at seq {stale}" in text and "signed for site 'site-test-production'" \
        in text


def _signed_past_the_guard(database, signing_key, checkpoint_file, site) -> int:
    """A checkpoint of ``site`` written as a version without the guard would (row, event,
    file line), as an attacker holding the key could."""
    from audit import checkpoints

    guard = checkpoints.current_site
    checkpoints.current_site = lambda *_arguments: None
    try:
        return sign(database, signing_key, checkpoint_file, site=site).seq
    finally:
        checkpoints.current_site = guard


def test_site_changes_must_join_up_and_end_at_the_instances_site(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file)
    record(audit_db, SITE_CHANGE_ACTION, site_change_data(SITE, COPY))
    record(audit_db, SITE_CHANGE_ACTION, site_change_data("site-elsewhere", "site-third"))
    sign(audit_db, signing_key, checkpoint_file, site="site-third")
    database, exported, text = verdicts(audit_db, public_keys, checkpoint_file, signing_key,
                                        tmp_path, site="site-third")
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert "changes the site from 'site-elsewhere', but event 4 had changed it to " \
           "'site-test-copy'" in text
    with audit_db.engine.connect() as connection:
        result = verify_chain(connection, public_keys=public_keys,
                              checkpoint_file=checkpoint_file, site="site-fourth")
    assert "changed the site to 'site-third', but this instance's site is 'site-fourth'" \
        in " ".join(result.problems)


def test_a_chain_signed_from_the_start_by_another_key_is_broken(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """The trust root is told, not taken from the lowest checkpoint: a chain rewritten
    from seq 1 under an attacker's key (given too, say planted as retired) is BROKEN."""
    append_events(audit_db, 4)
    sign(audit_db, new_key, checkpoint_file)
    append_events(audit_db, 2)
    root = key_id(signing_key.public_key())
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, new_key,
                                        tmp_path, root=root)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert f"the trusted first key is {root}" in text


def test_the_export_verifier_takes_its_first_key_as_the_root(
        audit_db, signing_key, new_key, checkpoint_file, tmp_path):
    append_events(audit_db, 3)
    sign(audit_db, new_key, checkpoint_file)
    keys = {key_id(key.public_key()): key.public_key() for key in (signing_key, new_key)}
    _database, exported, text = verdicts(audit_db, keys, checkpoint_file, new_key, tmp_path)
    assert exported == "BROKEN", text
    with audit_db.engine.connect() as connection:
        result = verify_chain(connection, public_keys=keys, checkpoint_file=checkpoint_file,
                              site=SITE)
    assert (result.root_key_id, result.root_pinned) == (key_id(new_key.public_key()), False)


def test_a_retired_key_signs_nothing_after_its_successors_first_checkpoint(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)  # the handover
    first_new = sign(audit_db, new_key, checkpoint_file).seq
    append_events(audit_db, 2)
    with as_a_forger():
        late = sign(audit_db, signing_key, checkpoint_file).seq  # the retired key, leaked
    append_events(audit_db, 1)
    with as_a_forger():  # who also closes the export with it
        database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, signing_key,
                                            tmp_path, root=key_id(signing_key.public_key()))
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert f"checkpoint at seq {late}" in text
    assert f"retired once its successor signed its first checkpoint at seq {first_new}" in text


def test_the_old_key_may_sign_until_the_new_key_has_signed(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)  # the handover
    append_events(audit_db, 1)
    sign(audit_db, signing_key, checkpoint_file)  # a job's, before the new key is installed
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, new_key,
                                        tmp_path, root=key_id(signing_key.public_key()))
    assert (database, exported) == ("INTACT", "INTACT"), text


def test_a_rotation_without_old_key_id_is_broken_in_both(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file)
    seq = record(audit_db, ROTATION_ACTION, {"new_key_id": "abcd", "site": SITE})
    sign(audit_db, signing_key, checkpoint_file)
    database, exported, text = verdicts(audit_db, public_keys, checkpoint_file, signing_key,
                                        tmp_path)
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert f"event {seq} (audit.key.rotated) does not name old_key_id" in text


def _relabelled(path: Path, target: Path, **header) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines()
    document = json.loads(lines[0])
    document.update(header)
    lines[0] = canonical_text({k: v for k, v in document.items() if v is not None})
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.mark.parametrize("header", [{"format": "qms-audit-export/1", "site": None},
                                    {"format": "qms-audit-export/2"}])
def test_an_export_relabelled_to_an_older_format_is_broken(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path, header):
    """A /1 header would switch off the site checks, a /2 one the closing rules: a
    checkpoint naming a site (in /1) or a purpose (in /1 or /2) shows the relabelling."""
    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file, site=COPY)
    verdicts(audit_db, public_keys, checkpoint_file, signing_key, tmp_path, site=COPY)
    relabelled = _relabelled(tmp_path / "export.jsonl", tmp_path / "old.jsonl", **header)
    outcome = verify_export.verify(str(relabelled), public_keys, [str(checkpoint_file)])
    assert outcome.problems and "the header was relabelled" in outcome.problems[0][1]


def test_the_header_site_is_the_closing_checkpoints_even_with_site_given(
        audit_db, signing_key, public_keys, checkpoint_file, tmp_path):
    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file)
    verdicts(audit_db, public_keys, checkpoint_file, signing_key, tmp_path)
    forged = _relabelled(tmp_path / "export.jsonl", tmp_path / "forged.jsonl",
                         site="site-elsewhere")
    outcome = verify_export.verify(str(forged), public_keys, [str(checkpoint_file)], SITE)
    assert any("the header's site 'site-elsewhere' is not the closing checkpoint's" in why
               for _seq, why in outcome.problems), outcome.problems


def test_an_unsigned_checkpoint_row_of_another_site_does_not_stop_signing(
        audit_db, signing_key, public_keys, checkpoint_file):
    """Whoever may insert a checkpoint row could otherwise wedge signing (and be told to
    record a bogus old site with set-site-id): only signed rows, or site changes, count."""
    from sqlalchemy import text

    append_events(audit_db, 2)
    sign(audit_db, signing_key, checkpoint_file)
    payload = {"at": "2026-01-01T00:00:00.000000Z", "hash": "a" * 64, "key_id": "0" * 16,
               "purpose": "routine", "seq": 999, "site": "site-x"}
    with audit_db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature, canonical) "
            "VALUES (999, :hash, :at, :key_id, 'AAAA', :canonical)"),
            {"hash": "a" * 64, "at": payload["at"], "key_id": "0" * 16,
             "canonical": canonical_text(payload)})
    assert sign(audit_db, signing_key, checkpoint_file) is not None
    with audit_db.reading() as session:
        assert current_site(session, public_keys) == SITE
        assert current_site(session) is None


def test_a_retired_key_cannot_hand_over_to_another_key(
        audit_db, signing_key, new_key, checkpoint_file, tmp_path):
    """A holder of the retired key (an old backup) and of the database rotates it once more,
    to a key of their own, signs the handover with it and anchors a tail with the third
    key: the retired key hands over nothing, so both verifiers refuse the third key."""
    third = Ed25519PrivateKey.generate()
    keys = {key_id(k.public_key()): k.public_key() for k in (signing_key, new_key, third)}
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)  # the handover
    first_new = sign(audit_db, new_key, checkpoint_file).seq  # retired from here
    append_events(audit_db, 2)
    rotation(audit_db, signing_key, third)
    with as_a_forger():
        late = sign(audit_db, signing_key, checkpoint_file).seq
    sign(audit_db, third, checkpoint_file)
    database, exported, text = verdicts(audit_db, keys, checkpoint_file, third, tmp_path,
                                        root=key_id(signing_key.public_key()))
    assert (database, exported) == ("BROKEN", "BROKEN"), text
    assert f"checkpoint at seq {late}" in text
    assert f"retired once its successor signed its first checkpoint at seq {first_new}" in text
    assert f"signed with key {key_id(third.public_key())}, which no audit.key.rotated" in text


def test_the_writer_refuses_a_key_the_chain_has_retired(
        audit_db, signing_key, new_key, both_keys, checkpoint_file):
    """A process that loaded the key before a rotation finished (a job, an API worker) is
    refused under the head lock, and writes nothing: its checkpoint would break the chain
    for every verifier, for good."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)  # the handover
    stale_sign(audit_db, signing_key, checkpoint_file, both_keys)  # while K is installed
    first_new = sign(audit_db, new_key, checkpoint_file).seq
    lines = checkpoint_file.read_text(encoding="utf-8")
    with audit_db.reading() as session:
        head = trail.head(session)
    with pytest.raises(trail.AuditError, match=f"rotated it to key {key_id(new_key.public_key())}"
                                               f", which signed the checkpoint at seq {first_new}"):
        stale_sign(audit_db, signing_key, checkpoint_file, both_keys)
    with audit_db.reading() as session:
        assert trail.head(session) == head
    assert checkpoint_file.read_text(encoding="utf-8") == lines


def test_a_rolled_back_first_checkpoint_of_the_new_key_retires_the_old_key_too(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """The new key's first checkpoint wrote its file line, then its transaction rolled back
    (a lost connection, a killed process): the verifiers retire the old key at that line,
    so the writer does too, and a stale process cannot break the chain."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)
    sign(audit_db, signing_key, checkpoint_file)  # the handover
    with pytest.raises(RuntimeError), audit_db.unit_of_work() as session:
        write_checkpoint(session, signing_key=new_key, file_path=checkpoint_file, site=SITE)
        raise RuntimeError("the commit never happens")
    append_events(audit_db, 2)
    with pytest.raises(trail.AuditError, match="audit-checkpoints.jsonl line"):
        stale_sign(audit_db, signing_key, checkpoint_file, both_keys)
    sign(audit_db, new_key, checkpoint_file)  # the job's next run, with the new key
    append_events(audit_db, 1)
    assert verdicts(audit_db, both_keys, checkpoint_file, new_key, tmp_path,
                    root=key_id(signing_key.public_key()))[:2] == ("INTACT", "INTACT")


def test_a_planted_checkpoint_row_does_not_stop_checkpoints(
        audit_db, signing_key, new_key, both_keys, checkpoint_file, tmp_path):
    """After a rotate-key that crashed once its event was recorded (the new key never
    installed), someone with the application's database role plants a checkpoint row
    naming the new key: its signature does not verify, so the current key signs on (and
    the verifiers report the row)."""
    append_events(audit_db, 3)
    sign(audit_db, signing_key, checkpoint_file)
    rotation(audit_db, signing_key, new_key)  # the crashed rotate-key's event
    with audit_db.unit_of_work() as session:
        head = trail.head(session)
        session.execute(audit_checkpoints.insert().values(
            seq=head.seq, hash=head.hash, at="2026-01-01T00:00:00.000000Z",
            key_id=key_id(new_key.public_key()), signature="AAAA", canonical="{}"))
    append_events(audit_db, 1)
    assert stale_sign(audit_db, signing_key, checkpoint_file, both_keys) is not None
    database, exported, text = verdicts(audit_db, both_keys, checkpoint_file, signing_key,
                                        tmp_path, root=key_id(signing_key.public_key()))
    assert database == "BROKEN" and "columns disagree with the signed payload" in text


def stale_sign(database, key, checkpoint_file, public_keys):
    """A checkpoint as the application's processes write it: with the public keys, so that
    the writer can tell a retired key."""
    with database.unit_of_work() as session:
        return write_checkpoint(session, signing_key=key, file_path=checkpoint_file,
                                site=SITE, public_keys=public_keys)


def test_one_key_rotation_at_a_time(tmp_path):
    """`qms audit rotate-key` runs under this lock: while one rotation holds it, another
    cannot take it (it waits), and it is free again afterwards."""
    key_path = tmp_path / "audit-ed25519.pem"
    lock_file = tmp_path / ".audit-ed25519.pem.rotation-lock"
    waited = []
    with keys.rotation_lock(key_path, on_wait=lambda: waited.append(1)), \
            open(lock_file, "a") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert waited == []  # nobody held it
    with open(lock_file, "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_second_key_rotation_says_it_waits_and_goes_on_after_the_first(tmp_path):
    key_path = tmp_path / "audit-ed25519.pem"
    waiting, order = threading.Event(), []

    def second():
        with keys.rotation_lock(key_path, on_wait=waiting.set):
            order.append("second")

    with keys.rotation_lock(key_path):
        runner = threading.Thread(target=second)
        runner.start()
        assert waiting.wait(timeout=60)  # it told its user, and waits
        order.append("first")
    runner.join(timeout=60)
    assert order == ["first", "second"]
