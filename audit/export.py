"""Export of the audit trail as JSON lines, for the stand-alone verifier.

Layout (docs/audit-trail-format.md): a header line
``{"exported_at":...,"format":"qms-audit-export/3","head":{"hash":...,"seq":...},
"site":...}``, then every event's canonical JSON verbatim in seq order, then every
checkpoint line ``{"checkpoint":{...},"signature":"..."}`` below the head, and last the
closing checkpoint, signed at export time over the last event with the purpose ``export``.
Lines end with ``\\n``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from audit.canonical import canonical_text
from audit.checkpoints import EXPORT, Checkpoint, list_checkpoints
from audit.streaming import stream_rows
from audit.trail import AuditError, connection_of

# /3: the closing checkpoint is marked (purpose "export"); /2 had it unmarked, /1 had none
EXPORT_FORMAT = "qms-audit-export/3"
CHUNK_ROWS = 20000


def export_jsonl(connection: Session | Connection, out: TextIO, *, closing: Checkpoint,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the export through the ``closing`` checkpoint to ``out`` (a text stream opened
    with encoding="utf-8" and newline="\\n"); return the number of events written.
    Read-only, streaming.

    ``closing`` is a checkpoint the caller has just signed and committed over the head
    (write_checkpoint with purpose EXPORT, else AuditError): the export holds events 1..closing.seq and ends with it, so the
    whole export is anchored, and the header's ``exported_at`` and ``head`` are the closing
    checkpoint's signed ``at``, ``seq`` and ``hash``. Events up to it are committed and
    immutable, so header, events and checkpoints agree even while others keep appending.
    """
    if closing.purpose != EXPORT:
        raise AuditError("an export is closed by a checkpoint signed for it (purpose export)")
    connection = connection_of(connection)
    header = {"exported_at": closing.at, "format": EXPORT_FORMAT,
              "head": {"hash": closing.hash, "seq": closing.seq}, "site": closing.site}
    out.write(canonical_text(header) + "\n")
    written = 0
    sql = f"SELECT canonical FROM audit_events WHERE seq <= {int(closing.seq)} ORDER BY seq"
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
        if checkpoint.seq < closing.seq:
            out.write(checkpoint.line() + "\n")
    out.write(closing.line() + "\n")
    return written
