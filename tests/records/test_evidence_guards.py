"""Version snapshots and signatures are append-only in the database too (migration 0003)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from qms.esign.models import Signature
from qms.records.models import RecordVersion

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _insert_evidence(connection) -> None:
    connection.execute(RecordVersion.__table__.insert().values(
        record_type="document", record_id="DOC-2026-99999", version=1, action="create",
        state="draft", content="{}", content_hash="0" * 64, changed_at=AT, changed_by="system"))
    connection.execute(Signature.__table__.insert().values(
        record_type="document", record_id="DOC-2026-99999", record_version=1,
        content_hash="0" * 64, meaning="approved", signer="someone", name="Some One", at=AT,
        key_id="0" * 16, signature="AA==", signed_payload="{}"))


@pytest.mark.parametrize("statement", [
    "UPDATE record_versions SET content_hash = 'x'",
    "DELETE FROM record_versions",
    "UPDATE signatures SET meaning = 'released'",
    "DELETE FROM signatures",
])
def test_evidence_rows_cannot_be_changed_or_removed(owner_engine, statement):
    # the triggers refuse even the owner of the tables (the application role is refused
    # earlier, by its privileges: tests/test_database_roles.py)
    engine = owner_engine
    with engine.begin() as connection:
        _insert_evidence(connection)
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
