"""Backward and forward trace over the genealogy: the recall-scope query.

Backward: everything that went into a lot (output -> input edges, down to the received lots);
forward: everywhere a lot went (input -> output, up to the finished lots). The walk runs in
memory over the genealogy index (qms.materials.genealogy), which catches up with the database
first; each lot's text is the one rendered by an earlier trace unless the audit trail shows
the lot or its material changed since, else it is read. Consumption entries never change, so
their text is read once. At 10,000 lots a
recursive query that walks and reads everything in the database took 100-300 ms; this takes
a few tens at most (docs/decisions.md, Known limits).

``trace_json`` returns the answer's text as the API sends it; ``trace`` parses it. The
recursive query stays for writes (``reachable_ids``: the cycle check of a consumption must
see the writing transaction's own entries) and as the benchmark's baseline.
"""
from __future__ import annotations

import enum
import json
from collections import Counter
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Integer, Select, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from audit.trail import appended_in_transaction
from qms.errors import NotFound
from qms.materials.genealogy import ENDS, GenealogyIndex, RenderedLot, index_for
from qms.materials.models import Lot, LotConsumption

LOTS, EDGES = Lot.__table__, LotConsumption.__table__


class Direction(str, enum.Enum):
    BACKWARD = "backward"  # what went into it
    FORWARD = "forward"  # where it went


def reachable_query(root_id: int, direction: Direction) -> Select:
    """SELECT id of every lot reachable from the root, the root included (the walk alone,
    without depth or JSON: the benchmark's baseline)."""
    near, far = (EDGES.c[name] for name in ENDS[Direction(direction).value])
    reach = select(literal(root_id, Integer).label("id")).cte("reach", recursive=True)
    reach = reach.union(select(far).join(reach, near == reach.c.id))
    return select(reach.c.id)


def reachable_ids(session: Session | Connection, root_id: int,
                  direction: Direction) -> list[int]:
    """The ids of every lot reachable from ``root_id`` in ``direction``, the root included."""
    return list(session.execute(reachable_query(root_id, direction)).scalars())


def trace_json(session: Session | Connection, lot_number: str,
               direction: Direction | str) -> str:
    """The whole graph reachable from the lot, as the JSON text of the API's answer:
    ``root``, ``direction``, ``nodes`` (one per lot with material, supplier, status and
    ``depth`` = shortest distance from the root, breadth-first: by depth, and within one
    depth in no particular order), ``edges`` (one per consumption entry, ``from`` the
    consumed lot ``to`` the lot made from it, whatever the direction) and ``counts`` (lots,
    edges, max_depth, by_status). NotFound when there is no such lot. Reads only.

    The walk runs over the in-memory index (qms.materials.genealogy), which holds what has
    committed; so the transaction must not have written (RuntimeError): its own changes would
    be missed, or kept after a rollback."""
    direction = Direction(direction)
    connection = session.connection() if isinstance(session, Session) else session
    if appended_in_transaction(connection):
        raise RuntimeError("trace reads committed data: run it in a transaction that has "
                           "not written")
    root_id = connection.execute(select(LOTS.c.id).where(LOTS.c.number == lot_number)).scalar()
    if root_id is None:
        raise NotFound(f"no lot {lot_number!r}")
    index = index_for(connection.engine)
    walk, as_of = index.walk(connection, root_id, direction.value)
    lots = _rendered_lots(connection, index, walk.lots, as_of)
    entries = _rendered_entries(connection, index, walk.entries)
    # joined by C loops (map, zip): at 10,000 lots a Python loop here costs as much as the walk
    nodes = ",".join(map("".join, zip(map(itemgetter(2), lots), map(str, walk.depths),
                                      repeat("}"))))
    by_status = Counter(map(itemgetter(1), lots))
    head = json.dumps({"root": lot_number, "direction": direction.value})[:-1]
    counts = json.dumps({"lots": len(walk.lots), "edges": len(walk.entries),
                         "max_depth": walk.depths[-1],
                         "by_status": dict(sorted(by_status.items()))})
    return f'{head},"nodes":[{nodes}],"edges":[{",".join(entries)}],"counts":{counts}}}'


def _rendered_lots(connection: Connection, index: GenealogyIndex, lot_ids: list[int],
                   as_of: tuple[int, str]) -> list[RenderedLot]:
    """The text of each lot, in the order of ``lot_ids``."""
    rendered = list(map(index.lots.get, lot_ids))
    if None not in rendered:
        return rendered
    missing = [lot for lot, text_ in zip(lot_ids, rendered) if text_ is None]
    # the depth is the one part that depends on the trace: it is appended per answer
    fresh = {lot: (material_id, status, f'{text_[:-1]},"depth":')
             for lot, material_id, status, text_ in _by_ids(_LOT_ROWS, connection, missing)}
    index.keep_lots(fresh, as_of)
    return [text_ or fresh[lot] for lot, text_ in zip(lot_ids, rendered)]


# the texts are written by the database (json_object, json_build_object): for a recall-scope
# trace read for the first time, encoding 20,000 rows in Python cost as much as reading them
_LOT_ROWS = """
SELECT l.id, l.material_id, l.state, {json}('number', l.number, 'material', m.number,
    'material_name', m.name, 'kind', m.kind, 'supplier', s.number, 'status', l.state,
    'origin', l.origin, 'quantity', l.quantity, 'unit', l.unit, 'expires_on', l.expires_on){end}
FROM lots AS l JOIN materials AS m ON m.id = l.material_id
LEFT JOIN suppliers AS s ON s.id = l.supplier_id WHERE l.id IN ({ids})"""
_ENTRY_ROWS = """
SELECT e.id,
    {json}('from', i.number, 'to', o.number, 'quantity', e.quantity, 'unit', e.unit){end}
FROM lot_consumptions AS e JOIN lots AS i ON i.id = e.input_lot_id
JOIN lots AS o ON o.id = e.output_lot_id WHERE e.id IN ({ids})"""
_DIALECTS = {"postgresql": {"ids": "SELECT unnest(CAST(:ids AS integer[]))",
                            "json": "json_build_object", "end": "::text"},
             "sqlite": {"ids": "SELECT value FROM json_each(:ids)", "json": "json_object",
                        "end": ""}}


def _by_ids(statement: str, connection: Connection, ids: list[int]):
    """Run ``statement`` for a list of ids bound as one value: an array (PostgreSQL) or JSON
    text (SQLite), so that 10,000 ids need no 10,000 placeholders."""
    postgresql = connection.dialect.name == "postgresql"
    listed = text(statement.format(**_DIALECTS["postgresql" if postgresql else "sqlite"]))
    return connection.execute(listed, {"ids": ids if postgresql else json.dumps(ids)})


def _rendered_entries(connection: Connection, index: GenealogyIndex, entry_ids: list[int]
                      ) -> list[str]:
    """The text of each consumption entry, in the order of ``entry_ids``."""
    rendered = list(map(index.entries.get, entry_ids))
    if None not in rendered:
        return rendered
    missing = [entry for entry, text_ in zip(entry_ids, rendered) if text_ is None]
    fresh = {entry: text_ for entry, text_ in _by_ids(_ENTRY_ROWS, connection, missing)}
    index.keep_entries(fresh)
    return [text_ or fresh[entry] for entry, text_ in zip(entry_ids, rendered)]


def trace(session: Session | Connection, lot_number: str, direction: Direction | str
          ) -> dict[str, Any]:
    """``trace_json`` parsed: the graph as Python data (quantities decimal strings, dates
    ISO strings)."""
    return json.loads(trace_json(session, lot_number, direction))
