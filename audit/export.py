"""Export of the audit trail as JSON lines, for the stand-alone verifier.

Layout (docs/audit-trail-format.md): a header line
``{"exported_at":...,"format":"qms-audit-export/1","head":{"hash":...,"seq":...}}``, then
every event's canonical JSON verbatim in seq order, then every checkpoint line
``{"checkpoint":{...},"signature":"..."}``. Lines end with ``\\n``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from audit.canonical import canonical_text, utc_timestamp
from audit.checkpoints import list_checkpoints
from audit.streaming import stream_rows
from audit.trail import connection_of, head

EXPORT_FORMAT = "qms-audit-export/1"
CHUNK_ROWS = 20000


def export_jsonl(connection: Session | Connection, out: TextIO, *,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the export to ``out`` (a text stream opened with encoding="utf-8" and
    newline="\\n") and return the number of events written. Read-only, streaming.

    The export stops at the head read first: events up to it are committed and immutable,
    so header, events and checkpoints agree even while others keep appending.
    """
    connection = connection_of(connection)
    # stamped before the head is read: a checkpoint signed before this moment covers at most
    # this head, which is what the stand-alone verifier relies on
    exported_at = utc_timestamp(datetime.now(UTC))
    top = head(connection)
    header = {"exported_at": exported_at, "format": EXPORT_FORMAT,
              "head": {"hash": top.hash, "seq": top.seq}}
    out.write(canonical_text(header) + "\n")
    written = 0
    sql = f"SELECT canonical FROM audit_events WHERE seq <= {int(top.seq)} ORDER BY seq"
    chunks = stream_rows(connection, sql, CHUNK_ROWS)
    try:
        for rows in chunks:
            out.write("".join([f"{text}\n" for (text,) in rows]))
            written += len(rows)
            if progress is not None:
                progress(written)
    finally:
        chunks.close()
    for checkpoint in list_checkpoints(connection):
        if checkpoint.seq <= top.seq:
            out.write(checkpoint.line() + "\n")
    return written
