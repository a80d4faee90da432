"""The database-side verifier and the stand-alone verifier give the same verdict on the same
tampered chains (issue 9 point 7).

Hypothesis builds an honest chain with the real writer (events and signed checkpoints), an
attacker with database access tampers with it, then the system exports it as `qms audit
export` does (a closing checkpoint signed over the head, then the export). The verdict of
verify_chain on the database (with the checkpoint file) must equal the verdict of
audit.verify_export on the export (with the same file): INTACT, BROKEN or UNANCHORED. When
the tampering leaves the database unable to sign the closing checkpoint (the head row no
longer fits the events), the export refuses and the database must say BROKEN.
"""
from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from audit import trail, verify_export
from audit.checkpoints import _signed, key_id, write_checkpoint
from audit.export import export_jsonl
from audit.schema import audit_checkpoints
from audit.succession import rotation_data
from audit.trail import AuditError
from audit.verify import verify_chain
from audit_test_support import (SITE, as_a_forger, create_schema, rewrite_chain_from,
                                rewrite_event_text, tamper)
from audit_test_support import AUDIT_BACKENDS, fresh_postgres_database
from qms.db import Database, make_engine

KEY = Ed25519PrivateKey.generate()
# a second key whose public half the verifiers are given too (planted as "retired"): it
# counts only where the chain introduces it by a rotation that KEY signed over
OTHER_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEYS = {key_id(key.public_key()): key.public_key() for key in (KEY, OTHER_KEY)}
START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

TAMPERINGS = ("none", "changed field", "changed field rehashed", "duplicate key",
              "non-canonical bytes", "reordered", "gap", "truncated tail",
              "truncated tail, head moved", "rewritten tail", "forged checkpoint",
              "checkpoint of another site", "head wound back", "checkpoint rows deleted",
              "key swapped in", "rotation without handover", "rotation handed over",
              "retired key closes")


@contextmanager
def fresh_database(backend: str):
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'chain.sqlite3'}"
            yield from _opened(url, Path(folder))
    else:
        with fresh_postgres_database() as url, tempfile.TemporaryDirectory() as folder:
            yield from _opened(url, Path(folder))


def _opened(url: str, folder: Path):
    engine = make_engine(url)
    create_schema(engine)
    database = Database(engine)
    try:
        yield database, folder / "audit-checkpoints.jsonl"
    finally:
        database.dispose()


def build_chain(database, checkpoint_file, events: int, checkpoint_after: set[int]) -> None:
    """``events`` record events, a signed checkpoint after each number in the set."""
    moment = START
    for number in range(1, events + 1):
        moment += timedelta(minutes=1)
        with database.unit_of_work() as session:
            trail.append(session, actor=f"user{number % 3}", action="deviation.record.updated",
                         data={"version": number, "after": {"qty": f"{number}.50"}},
                         entity=("deviation", f"DEV-2026-{number:05d}"),
                         reason=None if number % 2 else "correction", at=moment)
        if number in checkpoint_after:
            with database.unit_of_work() as session:
                write_checkpoint(session, signing_key=KEY, file_path=checkpoint_file, site=SITE,
                                 at=moment + timedelta(seconds=1))


def stored(database, sql: str, **parameters):
    with database.engine.connect() as connection:
        return connection.execute(text(sql), parameters).all()


def apply(tampering: str, database, checkpoint_file, at: int) -> None:
    """The attacker's change; ``at`` is a seq within the chain."""
    engine = database.engine
    [(last,)] = stored(database, "SELECT max(seq) FROM audit_events")
    at = min(at, last)
    [(canonical, digest)] = stored(database, "SELECT canonical, hash FROM audit_events "
                                             "WHERE seq = :s", s=at)
    if tampering == "changed field":
        tamper(engine, "UPDATE audit_events SET canonical = replace(canonical, 'correction', "
                       f"'corrected') WHERE seq = {at}")
    elif tampering == "changed field rehashed":
        forged = canonical.replace('"version":', '"version":1', 1)
        tamper(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_events SET canonical = :c, hash = :h "
                                    "WHERE seq = :s"),
                               {"c": forged, "h": sha256(forged.encode()).hexdigest(), "s": at})
    elif tampering == "duplicate key":
        document = json.loads(canonical)
        actor = json.dumps(document["actor"])
        rewrite_event_text(engine, at, canonical.replace(f'"actor":{actor}',
                                                         f'"actor":{actor},"actor":{actor}', 1))
    elif tampering == "non-canonical bytes":
        rewrite_event_text(engine, at, canonical.replace('"data":{', '"data": {', 1))
    elif tampering == "reordered" and at < last:
        tamper(engine, f"UPDATE audit_events SET seq = -1 WHERE seq = {at}",
               f"UPDATE audit_events SET seq = {at} WHERE seq = {at + 1}",
               f"UPDATE audit_events SET seq = {at + 1} WHERE seq = -1")
    elif tampering == "gap" and at < last:
        tamper(engine, f"DELETE FROM audit_events WHERE seq = {at}")
    elif tampering == "truncated tail":
        tamper(engine, f"DELETE FROM audit_events WHERE seq > {at}")
    elif tampering == "truncated tail, head moved":
        tamper(engine, f"DELETE FROM audit_events WHERE seq > {at}",
               f"UPDATE audit_head SET seq = {at}, hash = '{digest}'")
    elif tampering == "rewritten tail":
        rewrite_chain_from(engine, at, new_actor="mallory")
    elif tampering in ("forged checkpoint", "checkpoint of another site"):
        signer, site = ((Ed25519PrivateKey.generate(), SITE) if tampering == "forged checkpoint"
                        else (KEY, "site-copy"))
        forged = _signed(signer, at, digest, "2026-05-04T07:00:00.000000Z", site)
        tamper(engine)
        with engine.begin() as connection:
            connection.execute(audit_checkpoints.delete().where(audit_checkpoints.c.seq == at))
            connection.execute(audit_checkpoints.insert().values(
                seq=at, hash=forged.hash, at=forged.at, key_id=forged.key_id,
                signature=forged.signature, canonical=forged.canonical))
        with open(checkpoint_file, "a", encoding="utf-8") as handle:
            handle.write(forged.line() + "\n")
    elif tampering == "head wound back":
        tamper(engine, f"UPDATE audit_head SET seq = {at}, hash = '{digest}'")
    elif tampering == "checkpoint rows deleted":
        tamper(engine, "DELETE FROM audit_checkpoints")
    elif tampering in ("key swapped in", "rotation without handover", "rotation handed over"):
        change_key(database, checkpoint_file, tampering)
    elif tampering == "retired key closes":  # KEY, retired, then signs the closing one
        change_key(database, checkpoint_file, "rotation handed over")


def change_key(database, checkpoint_file, how: str) -> None:
    """OTHER_KEY signs a checkpoint: swapped in without a rotation, after a rotation event
    that KEY never signed over, or after a rotation that KEY handed over (the honest way)."""
    moment = START + timedelta(hours=12)
    if how != "key swapped in":
        with database.unit_of_work() as session:
            trail.append(session, actor="admin", action="audit.key.rotated", reason="yearly",
                         at=moment, data=rotation_data(key_id(KEY.public_key()),
                                                       key_id(OTHER_KEY.public_key()), SITE))
    signers = (KEY, OTHER_KEY) if how == "rotation handed over" else (OTHER_KEY,)
    for signer in signers:
        with database.unit_of_work() as session:
            write_checkpoint(session, signing_key=signer, file_path=checkpoint_file, site=SITE,
                             at=moment)


def database_verdict(database, checkpoint_file) -> str:
    with database.engine.connect() as connection:
        return verify_chain(connection, public_keys=PUBLIC_KEYS, checkpoint_file=checkpoint_file,
                            site=SITE).verdict


def export_verdict(database, checkpoint_file, path: Path, closing_key=KEY) -> str:
    """Export as `qms audit export` does, closed by ``closing_key``, then verify it
    stand-alone; REFUSED when the closing checkpoint cannot be written."""
    try:
        with database.unit_of_work() as session:
            closing = write_checkpoint(session, signing_key=closing_key, file_path=checkpoint_file,
                                       site=SITE, at=START + timedelta(days=1),
                                       purpose="export")
    except (IntegrityError, AuditError):
        return "REFUSED"
    with database.reading() as session, open(path, "w", encoding="utf-8", newline="\n") as out:
        export_jsonl(session, out, closing=closing)
    try:
        outcome = verify_export.verify(str(path), PUBLIC_KEYS, [str(checkpoint_file)], SITE)
    except verify_export.Broken:
        return "BROKEN"
    if outcome.problems:
        return "BROKEN"
    return "INTACT" if outcome.closing else "UNANCHORED"


@pytest.mark.parametrize("backend", AUDIT_BACKENDS)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.integers(min_value=2, max_value=7),
       checkpoint_after=st.sets(st.integers(min_value=1, max_value=7), max_size=2),
       tampering=st.sampled_from(TAMPERINGS), at=st.integers(min_value=1, max_value=9))
def test_both_verifiers_agree_on_tampered_chains(backend, events, checkpoint_after, tampering,
                                                 at):
    with fresh_database(backend) as (database, checkpoint_file):
        build_chain(database, checkpoint_file, events, checkpoint_after)
        apply(tampering, database, checkpoint_file, at)
        before = database_verdict(database, checkpoint_file)
        # the verifiers must agree on whatever a forger writes: the export is closed by a
        # copy of the writer that also signs with a key the chain has retired
        with as_a_forger():
            exported = export_verdict(database, checkpoint_file,
                                      checkpoint_file.with_name("export.jsonl"),
                                      OTHER_KEY if tampering == "rotation handed over" else KEY)
        if exported == "REFUSED":
            assert before == "BROKEN", tampering
            return
        after = database_verdict(database, checkpoint_file)
        assert after == exported, (tampering, before, after, exported)
        if before == "BROKEN":
            assert after == "BROKEN", tampering
        if tampering in ("none", "rotation handed over"):
            assert after == "INTACT", tampering
        if tampering in ("key swapped in", "rotation without handover",
                         "retired key closes"):
            # at the latest when KEY signs the closing checkpoint: two keys, no handover
            assert after == "BROKEN", tampering
