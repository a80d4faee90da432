"""The genealogy's shape held in memory, so that a trace walks it without the database.

A recursive query over 3,000,000 consumption entries spends tens of milliseconds walking a
recall-scope trace (~10,000 lots) before it has read a single lot; a breadth-first walk over
adjacency arrays in memory takes a few. The shape is safe to keep because it only grows:
consumption entries are append-only (a database trigger refuses UPDATE and DELETE), so the
index catches up by reading the entries with an id above the last one it holds. That read
misses nothing because ids are handed out in commit order: every entry is written under the
audit head lock (``batches._consume`` takes it before inserting), so an entry with a higher
id never commits before one with a lower id.

Each direction is a CSR adjacency (offsets per lot id into flat arrays of far-end lot ids and
entry ids), built on first use in one ordered read; entries appended since go to a small
overflow map until it outgrows a share of the arrays and the direction is read again. About
10 bytes per entry and direction, 8 per lot id.

Beside the shape, the index keeps what ``trace`` rendered before (each lot's answer text,
dropped when the audit trail shows the lot or its material changed; each entry's text,
entries never change), bounded, oldest out first. Everything is per database: if the audit chain of the database behind the
engine no longer runs through the head seen last (another database, or a restore to an
earlier state), it is all dropped.
"""
from __future__ import annotations

import threading
import weakref
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import Connection

from qms.materials.models import Lot, Material

# the overflow is folded into the arrays (by reading the direction again) past this many
# entries, or past an eighth of the entries already in the arrays, whichever is more
REBUILD_AT_LEAST = 50_000
# rendered texts kept: several recall-scope traces' worth (~10,000 lots, ~30,000 entries)
LOTS_KEPT = 100_000
ENTRIES_KEPT = 300_000

LOTS, MATERIALS = Lot.__table__, Material.__table__

# (near end, far end) of a step in each direction
ENDS = {"backward": ("output_lot_id", "input_lot_id"),
        "forward": ("input_lot_id", "output_lot_id")}

_NEW_ENTRIES = text("SELECT id, input_lot_id, output_lot_id FROM lot_consumptions "
                    "WHERE id > :last ORDER BY id")
_ENTRY_ENDS = text("SELECT input_lot_id, output_lot_id FROM lot_consumptions WHERE id = :id")
_CHANGED_RECORDS = text(
    "SELECT DISTINCT entity_type, entity_id FROM audit_events "
    "WHERE seq > :after AND seq <= :upto AND entity_type IN ('lot', 'material')")
_HEAD = text("SELECT seq, hash, (SELECT hash FROM audit_events WHERE seq = :seen) "
             "FROM audit_head WHERE id = 1")


@dataclass(frozen=True)
class Walk:
    """What a walk reached: lots in breadth-first order with their depth (shortest distance
    from the root), and every entry leaving a reached lot in the walk's direction."""
    lots: list[int]
    depths: list[int]
    entries: list[int]


# A lot's answer text without its depth (the one part that depends on the trace), with
# what else a trace needs of it: (material id, status, text). A plain tuple, not a named one:
# the garbage collector stops tracking plain tuples of ints and strings, and a hundred
# thousand tracked ones lengthen every full collection.
RenderedLot = tuple[int, str, str]


class Adjacency:
    """One direction of the genealogy: the consumption entries leaving each lot, as of the
    highest entry id it holds."""

    def __init__(self, direction: str, connection: Connection):
        near, far = ENDS[direction]
        self.backward = direction == "backward"
        # ordered by the near end only: the index on (near, far, ...) gives that order
        # without a sort, and the order of the entries of one lot does not matter
        self.offsets, self.far, self.entries, self.last = _csr(connection.exec_driver_sql(
            f"SELECT {near}, {far}, id FROM lot_consumptions ORDER BY {near}"), self.backward)
        self.overflow: dict[int, list[tuple[int, int]]] = {}
        self.overflow_size = 0

    def holds_its_last_entry(self, connection: Connection) -> bool:
        """False when the entry it read last is gone or has other ends: not the database
        it was read from."""
        if self.last is None:
            return True
        ends = connection.execute(_ENTRY_ENDS, {"id": self.last[0]}).one_or_none()
        return ends is not None and tuple(ends) == self.last[1:]

    def catch_up(self, connection: Connection) -> None:
        rows = connection.execute(_NEW_ENTRIES, {"last": self.last[0] if self.last else 0})
        for entry, consumed, made in rows:
            near, far = (made, consumed) if self.backward else (consumed, made)
            self.overflow.setdefault(near, []).append((far, entry))
            self.overflow_size += 1
            self.last = (entry, consumed, made)

    def outgrown(self) -> bool:
        return self.overflow_size > max(REBUILD_AT_LEAST, len(self.entries) // 8)

    def walk(self, root: int) -> Walk:
        """Breadth first from ``root``, one depth at a time: each lot is reached once, at
        its shortest distance, so the walk ends even on a graph with a cycle."""
        offsets, far_ids, entry_ids = self.offsets, self.far, self.entries
        overflow, bound = self.overflow, len(self.offsets) - 1
        lots, depths, entries = [root], [0], []
        seen, frontier, depth = {root}, [root], 0
        while frontier:
            depth += 1
            reached: list[int] = []
            for lot in frontier:
                if lot < bound:
                    start, end = offsets[lot], offsets[lot + 1]
                    if start != end:
                        reached.extend(far_ids[start:end])
                        entries.extend(entry_ids[start:end])
                extra = overflow.get(lot) if overflow else None
                if extra:
                    reached.extend(far for far, _ in extra)
                    entries.extend(entry for _, entry in extra)
            # a set difference, not a loop: within one depth the order does not matter
            frontier = list(set(reached) - seen)
            seen.update(frontier)
            lots.extend(frontier)
            depths.extend([depth] * len(frontier))
        return Walk(lots, depths, entries)


def _csr(rows: Iterable[tuple[int, int, int]], backward: bool
         ) -> tuple[array, array, array, tuple[int, int, int] | None]:
    """(offsets, far ends, entry ids, (id, consumed, made) of the highest entry) from rows
    (near, far, id) ordered by near: the steps out of lot n are at positions offsets[n] ..
    offsets[n + 1] - 1."""
    offsets, far_ids, entry_ids = array("q", [0]), array("i"), array("i")
    last = None
    for near, far, entry in rows:
        if len(offsets) <= near:  # lots without entries get an empty range
            offsets.extend([len(far_ids)] * (near + 1 - len(offsets)))
        far_ids.append(far)
        entry_ids.append(entry)
        if last is None or entry > last[0]:
            last = (entry, far, near) if backward else (entry, near, far)
    offsets.append(len(far_ids))
    return offsets, far_ids, entry_ids, last


class GenealogyIndex:
    """The shape (both directions) and the rendered texts of one database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._directions: dict[str, Adjacency] = {}
        # the audit head (seq, hash) the kept texts are current with
        self.head: tuple[int, str | None] = (0, None)
        self.lots: dict[int, RenderedLot] = {}
        self.entries: dict[int, str] = {}

    def walk(self, connection: Connection, root: int, direction: str
             ) -> tuple[Walk, tuple[int, str]]:
        """Catch up with the database, then walk from ``root``: (the walk, the audit head
        the kept texts are now current with)."""
        with self._lock:
            self._catch_up_texts(connection)
            adjacency = self._directions.get(direction)
            if adjacency is not None:
                adjacency.catch_up(connection)
            if adjacency is None or adjacency.outgrown():
                adjacency = self._directions[direction] = Adjacency(direction, connection)
            return adjacency.walk(root), self.head

    def keep_lots(self, rendered: dict[int, RenderedLot], as_of: tuple[int, str]) -> None:
        """Keep texts read after the audit head was ``as_of``, unless another trace has
        caught up since: the changes it dropped texts for may be missing from these."""
        with self._lock:
            if as_of == self.head:
                _keep(self.lots, rendered, LOTS_KEPT)

    def keep_entries(self, rendered: dict[int, str]) -> None:
        with self._lock:
            _keep(self.entries, rendered, ENTRIES_KEPT)

    def _catch_up_texts(self, connection: Connection) -> None:
        """Drop the texts of lots changed since the last trace. Every change to a lot or a
        material is a new version recorded in the audit trail with the record's number, in
        the same transaction, and audit seqs commit in order (the head lock): so the events
        up to the head read here are all the changes there are up to it."""
        seen_seq, seen_hash = self.head
        seq, digest, hash_at_seen = connection.execute(_HEAD, {"seen": seen_seq}).one()
        if (seen_seq and hash_at_seen != seen_hash) or not all(
                adjacency.holds_its_last_entry(connection)
                for adjacency in self._directions.values()):
            # the chain does not run through the head seen last: another database behind
            # the engine (re-created, or restored to an earlier state); nothing kept is
            # known to be its
            self._directions.clear()
            self.lots.clear()
            self.entries.clear()
        elif seq > seen_seq and self.lots:
            self._drop_changed(connection, seq)
        self.head = (seq, digest)

    def _drop_changed(self, connection: Connection, head: int) -> None:
        changed = connection.execute(_CHANGED_RECORDS, {"after": self.head[0], "upto": head}
                                     ).all()
        if len(changed) > LOTS_KEPT // 10:  # cheaper to read them all again
            self.lots.clear()
            return
        lots = [number for kind, number in changed if kind == "lot"]
        materials = [number for kind, number in changed if kind == "material"]
        if lots:
            for lot in connection.execute(select(LOTS.c.id).where(LOTS.c.number.in_(lots))
                                          ).scalars():
                self.lots.pop(lot, None)
        if materials:
            gone = set(connection.execute(select(MATERIALS.c.id).where(
                MATERIALS.c.number.in_(materials))).scalars())
            for lot in [lot for lot, rendered in self.lots.items() if rendered[0] in gone]:
                del self.lots[lot]


def _keep(kept: dict, new: dict, limit: int) -> None:
    kept.update(new)
    excess = len(kept) - limit
    if excess > 0:  # oldest first: dicts keep insertion order
        for key in list(islice(kept, excess)):
            del kept[key]


_indexes: weakref.WeakKeyDictionary[Engine, GenealogyIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def index_for(engine: Engine) -> GenealogyIndex:
    """The index of the engine's database (one per engine and process)."""
    with _indexes_lock:
        index = _indexes.get(engine)
        if index is None:
            index = _indexes[engine] = GenealogyIndex()
        return index


def warm(engine: Engine) -> None:
    """Read both directions now rather than at the first trace (seconds at millions of
    entries): a server's workers call it in the background at start."""
    with engine.connect() as connection:
        index = index_for(engine)
        for direction in ENDS:
            index.walk(connection, 0, direction)  # lot id 0 does not exist: reads, walks nothing
