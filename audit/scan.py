"""The two halves of walking the chain, built for a million events in a few seconds.

- ``walk_events``: Python streams ``seq, prev_hash, hash, canonical`` in seq order and
  checks continuity, links and sha256. Only four columns: at this speed the cost of turning
  each fetched value into a Python object dominates, not the hashing.
- ``first_column_disagreement``: the database compares the queryable columns with the
  canonical JSON itself, in C and in one aggregate query. verify_chain runs it on a second
  connection while the walk runs, so the two use both cores: the driver releases the GIL
  while the database works.

Together they cover the format's checks: the canonical ``prev_hash`` equals the column
(column check), the column equals the previous hash (walk), which is sha256 of the previous
canonical bytes (walk).

The walk also checks every text's canonical form (audit.fast_form), a chunk at a time, in
this process: worker processes would save a second or two on the first walk of a long chain
only (later walks skip the events an earlier one checked), at the price of child processes
that must import exactly this code and be supervised.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from bisect import bisect_right
from hashlib import sha256
from operator import itemgetter

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from audit.fast_form import first_non_canonical, stored_text_problem
from audit.schema import GENESIS_HASH, audit_events
from audit.streaming import canonical_bytes_sql, stream_rows

CHUNK_ROWS = 20000
_SEQ = itemgetter(0)
# "action" is the first key of the canonical text, so this prefix finds checkpoint events
CHECKPOINT_EVENT_PREFIX = b'{"action":"audit.checkpoint.signed",'
QUERYABLE = ("seq", "at", "actor", "action", "entity_type", "entity_id", "reason",
             "prev_hash")

# The lowest seq whose queryable columns disagree with its canonical text.
# SQLite compares values: json_extract parses each text once (JSON1 caches the parse).
# PostgreSQL's jsonb parse costs more than the whole walk, so it compares text instead: the
# canonical text must start with {"action":A,"actor":B,"at":C,"data": and end with
# ,"entity":E,"prev_hash":P,"reason":R,"seq":N} rebuilt from the columns (to_json escapes
# exactly as the canonical encoding does). That is sound because a JSON string literal ends
# at its first unescaped quote, so these literals can neither end early nor run on: a
# prefix match fixes the first four members of the top-level object, and a suffix match,
# which starts outside any string (its first quote follows a comma), fixes the last four.
# Anything that is not well-formed there fails to match; NULLs count as disagreement.
_DISAGREEING_SQL = {
    "sqlite": """
        SELECT min(seq) FROM audit_events WHERE CASE WHEN json_valid(canonical) THEN
            json_extract(canonical, '$.seq') IS NOT seq
            OR json_extract(canonical, '$.at') IS NOT at
            OR json_extract(canonical, '$.actor') IS NOT actor
            OR json_extract(canonical, '$.action') IS NOT action
            OR json_extract(canonical, '$.entity.type') IS NOT entity_type
            OR json_extract(canonical, '$.entity.id') IS NOT entity_id
            OR json_extract(canonical, '$.reason') IS NOT reason
            OR json_extract(canonical, '$.prev_hash') IS NOT prev_hash
        ELSE 1 END""",
    # OFFSET 0 keeps the subquery from being inlined, which would build each frame twice
    "postgresql": """
        SELECT min(seq) FROM (
            SELECT seq, canonical,
                '{"action":' || to_json(action)::text || ',"actor":' || to_json(actor)::text
                || ',"at":' || to_json(at)::text || ',"data":' AS prefix,
                ',"entity":' || CASE WHEN entity_type IS NULL AND entity_id IS NULL THEN 'null'
                    ELSE '{"id":' || coalesce(to_json(entity_id)::text, '?') || ',"type":'
                         || coalesce(to_json(entity_type)::text, '?') || '}' END
                || ',"prev_hash":' || to_json(prev_hash)::text
                || ',"reason":' || coalesce(to_json(reason)::text, 'null')
                || ',"seq":' || seq || '}' AS suffix
            FROM audit_events OFFSET 0) AS framed
        WHERE NOT coalesce(starts_with(canonical, prefix)
                           AND right(canonical, length(suffix)) = suffix, false)""",
}


@dataclass
class Walk:
    """State of the walk: where it is, and the hashes that checkpoints asked for."""
    wanted: set[int]
    next_seq: int = 1
    last_hash: str = GENESIS_HASH
    found: dict[int, str] = field(default_factory=dict)
    bad: tuple[int, str] | None = None  # (seq, why) of the first failing event
    # seq -> canonical bytes of every audit.checkpoint.signed event, for the cross-check
    checkpoint_events: dict[int, bytes] = field(default_factory=dict)
    # (seq, hash): an earlier walk found events 1..seq canonical when event seq had this
    # hash. Their canonical form is not checked again; sound only if the chain still has
    # that hash there (the hashes and links, checked for every event, then pin every byte
    # before it), which form_known_held() tells after the walk.
    form_known: tuple[int, str] = (0, GENESIS_HASH)

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def form_known_held(self) -> bool:
        seq, digest = self.form_known
        return seq == 0 or self.found.get(seq) == digest


def walk_events(connection: Connection, walk: Walk,
                progress: Callable[[int], None] | None = None) -> None:
    """Check continuity, links, hashes and canonical form of every event in seq order; stop
    at the first failure (``walk.bad``). Streams; memory stays at a few chunks."""
    sql = (f"SELECT seq, prev_hash, hash, {canonical_bytes_sql(connection)} "
           "FROM audit_events ORDER BY seq")
    through = walk.form_known[0]
    chunks = stream_rows(connection, sql, CHUNK_ROWS)
    try:
        for rows in chunks:
            if not _advance(walk, rows, _first_form_problem(rows, through), progress):
                return
    finally:
        chunks.close()


def _first_form_problem(rows: list[tuple], through: int) -> int | None:
    """Index of the first row past seq ``through`` (checked by an earlier walk) whose text
    is not canonical; None when there is none."""
    skip = bisect_right(rows, through, key=_SEQ)
    bad = first_non_canonical([row[3] for row in rows[skip:]])
    return None if bad is None else skip + bad


def _advance(walk: Walk, rows: list[tuple], form_bad: int | None,
             progress: Callable[[int], None] | None) -> bool:
    """Walk over one chunk; False when it holds the first bad event (then ``walk.bad``)."""
    bad_index = _check_rows(rows, walk, form_bad)
    if progress is not None:
        progress(walk.last_seq)
    if bad_index is None:
        return True
    walk.bad = _explain_link(rows[bad_index], walk.next_seq, walk.last_hash)
    return False


def _check_rows(rows: list[tuple], walk: Walk, form_bad: int | None) -> int | None:
    """The hot loop: advance ``walk`` over good rows; return the first bad row's index.
    ``form_bad`` is the index of the first row whose text is not canonical, if any."""
    wanted, found = walk.wanted, walk.found
    start = expected = walk.next_seq
    last = walk.last_hash
    try:
        for seq, prev, digest, text in rows if form_bad is None else rows[:form_bad]:
            if seq != expected or prev != last or sha256(text).hexdigest() != digest:
                break
            if seq in wanted:
                found[seq] = digest
            if text.startswith(CHECKPOINT_EVENT_PREFIX):
                walk.checkpoint_events[seq] = text
            expected += 1
            last = digest
        else:
            walk.next_seq, walk.last_hash = expected, last
            return form_bad
    except TypeError:  # a NULL text: _explain_link says why
        pass
    walk.next_seq, walk.last_hash = expected, last
    return expected - start


def _explain_link(row: tuple, expected: int, last_hash: str) -> tuple[int, str]:
    seq, prev, digest, text = row
    if seq != expected:
        if isinstance(seq, int) and seq > expected:
            return expected, (f"event {expected} is missing: the event after seq "
                              f"{expected - 1} is seq {seq}")
        return expected, f"seq {seq!r} found where seq {expected} was expected"
    if prev != last_hash:
        return seq, (f"event {seq}: prev_hash {prev} is not the hash of event {seq - 1} "
                     f"({last_hash}): events were removed, reordered or replaced")
    if not isinstance(text, bytes) or sha256(text).hexdigest() != digest:
        return seq, (f"event {seq}: stored hash {digest} is not sha256 of the stored "
                     "canonical text: the event's content was altered")
    return seq, f"event {seq}: {stored_text_problem(text)}"


def column_check_in_background(connection: Connection) -> Callable[[], int | None]:
    """Start ``first_column_disagreement`` beside the walk; return the getter of its result.

    The background query runs on a connection of its own and so sees committed events
    only. Where no second connection can see the same database (SQLite in memory, a
    static pool), the getter runs the query on ``connection`` when called.
    """
    if not _second_connection_possible(connection):
        return lambda: first_column_disagreement(connection, own_connection=False)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-columns")
    future = executor.submit(_on_own_connection, connection.engine)
    executor.shutdown(wait=False)  # the thread ends with the query
    return future.result


def _second_connection_possible(connection: Connection) -> bool:
    engine = connection.engine
    if engine.dialect.name != "sqlite":
        return True
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    return not in_memory and not isinstance(engine.pool, (StaticPool, SingletonThreadPool))


def _on_own_connection(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return first_column_disagreement(connection, own_connection=True)


def first_column_disagreement(connection: Connection, *, own_connection: bool) -> int | None:
    """The lowest seq whose queryable columns differ from its canonical JSON, or None."""
    try:
        return connection.exec_driver_sql(_DISAGREEING_SQL[connection.dialect.name]).scalar()
    except DBAPIError:
        # e.g. an SQLite built without JSON1: compare in Python instead, slowly but surely
        if own_connection:
            connection.rollback()
        return _first_disagreement_in_python(connection)


def _first_disagreement_in_python(connection: Connection) -> int | None:
    sql = f"SELECT {', '.join(QUERYABLE)}, canonical FROM audit_events ORDER BY seq"
    chunks = stream_rows(connection, sql, CHUNK_ROWS)
    try:
        for rows in chunks:
            for row in rows:
                if differing_columns(dict(zip(QUERYABLE, row)), row[-1]):
                    return row[0]
    finally:
        chunks.close()
    return None


def differing_columns(columns: dict, canonical: str) -> list[str]:
    """Names of the queryable columns whose values differ from the canonical JSON's."""
    try:
        document = json.loads(canonical)
        entity = document["entity"]
        in_json = {"seq": document["seq"], "at": document["at"], "actor": document["actor"],
                   "action": document["action"], "reason": document["reason"],
                   "entity_type": entity and entity["type"],
                   "entity_id": entity and entity["id"], "prev_hash": document["prev_hash"]}
    except (ValueError, KeyError, TypeError):
        return ["canonical"]  # not JSON, or not an event object
    return [name for name in QUERYABLE if type(columns[name]) is not type(in_json[name])
            or columns[name] != in_json[name]]


def explain_columns(connection: Connection, seq: int) -> tuple[int, str]:
    """(seq, why) for an event that first_column_disagreement reported."""
    c = audit_events.c
    row = connection.execute(select(*(c[name] for name in QUERYABLE), c.canonical)
                             .where(c.seq == seq)).one()
    names = differing_columns(dict(zip(QUERYABLE, row)), row[-1])
    if names == ["canonical"]:
        return seq, f"event {seq}: the canonical text is not a JSON event object"
    shown = ", ".join(names) or "(the database's JSON functions)"
    return seq, (f"event {seq}: queryable column(s) {shown} disagree with the canonical "
                 "JSON: a column was edited")
