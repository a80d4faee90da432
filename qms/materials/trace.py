"""Backward and forward trace over the genealogy: the recall-scope query.

Backward: everything that went into a lot (output -> input edges, down to the received lots);
forward: everywhere a lot went (input -> output, up to the finished lots). One statement does
it all inside the database: a recursive CTE walks the lots reachable from the root with their
distance (UNION, so a lot reached along two paths at one distance is visited once), the
shortest distance per lot is its depth, and the database itself writes the answer's JSON
arrays (nodes with material, supplier and status; edges; counts by status). At 10,000 lots
building that JSON in Python (a row object, a dict, a date and a decimal per lot, then the
encoder) cost several times the walk itself; in the database it costs about as much as the
walk. ``trace_json`` returns the answer's text as the API sends it; ``trace`` parses it.
"""
from __future__ import annotations

import enum
import json
from typing import Any

from sqlalchemy import Integer, Select, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from qms.errors import NotFound
from qms.materials.models import Lot, LotConsumption

LOTS, EDGES = Lot.__table__, LotConsumption.__table__
# a genealogy is acyclic (consumption refuses a cycle); the bound keeps a walk finite even if
# a cycle were ever written by other means
MAX_DEPTH = 1000


class Direction(str, enum.Enum):
    BACKWARD = "backward"  # what went into it
    FORWARD = "forward"  # where it went


# (near, far) edge columns: a step goes from the near end to the far end
_ENDS = {Direction.BACKWARD: ("output_lot_id", "input_lot_id"),
         Direction.FORWARD: ("input_lot_id", "output_lot_id")}
# which end of a step (n: near, f: far) is the consumed lot and which the lot made from it
_FLOW = {Direction.BACKWARD: ("f", "n"), Direction.FORWARD: ("n", "f")}


def reachable_query(root_id: int, direction: Direction) -> Select:
    """SELECT id of every lot reachable from the root, the root included (the walk alone,
    without depth or JSON: the benchmark's baseline)."""
    near, far = (EDGES.c[name] for name in _ENDS[Direction(direction)])
    reach = select(literal(root_id, Integer).label("id")).cte("reach", recursive=True)
    reach = reach.union(select(far).join(reach, near == reach.c.id))
    return select(reach.c.id)


def reachable_ids(session: Session | Connection, root_id: int,
                  direction: Direction) -> list[int]:
    """The ids of every lot reachable from ``root_id`` in ``direction``, the root included."""
    return list(session.execute(reachable_query(root_id, direction)).scalars())


_WALK = """
WITH RECURSIVE reach(id, depth) AS (
    SELECT {root}, 0
    UNION
    SELECT e.{far}, r.depth + 1 FROM reach r JOIN lot_consumptions e ON e.{near} = r.id
    WHERE r.depth < :max_depth
),
nodes AS MATERIALIZED (SELECT id, MIN(depth) AS depth FROM reach GROUP BY id),
node_rows AS MATERIALIZED (
    SELECT n.id, n.depth, l.number, m.number AS material, m.name AS material_name, m.kind,
           s.number AS supplier, l.state AS status, l.origin, l.quantity, l.unit, l.expires_on
    FROM nodes n JOIN lots l ON l.id = n.id JOIN materials m ON m.id = l.material_id
    LEFT JOIN suppliers s ON s.id = l.supplier_id
),
edge_rows AS (
    SELECT {source}.number AS source, {target}.number AS target, e.quantity, e.unit
    FROM node_rows n JOIN lot_consumptions e ON e.{near} = n.id JOIN lots f ON f.id = e.{far}
)
"""

_SQLITE = _WALK + """
SELECT
 (SELECT json_group_array(json_object('number', number, 'material', material,
      'material_name', material_name, 'kind', kind, 'supplier', supplier, 'status', status,
      'origin', origin, 'quantity', quantity, 'unit', unit, 'expires_on', expires_on,
      'depth', depth)) FROM node_rows),
 (SELECT json_group_array(json_object('from', source, 'to', target, 'quantity', quantity,
      'unit', unit)) FROM edge_rows),
 (SELECT json_group_object(status, lots) FROM
      (SELECT status, count(*) AS lots FROM node_rows GROUP BY status ORDER BY status)),
 (SELECT count(*) FROM node_rows), (SELECT max(depth) FROM node_rows),
 (SELECT count(*) FROM edge_rows)
"""

_POSTGRESQL = _WALK + """
SELECT
 (SELECT coalesce(json_agg(node), '[]')::text FROM
      (SELECT number, material, material_name, kind, supplier, status, origin, quantity, unit,
              expires_on, depth FROM node_rows) AS node),
 (SELECT coalesce(json_agg(edge), '[]')::text FROM
      (SELECT source AS "from", target AS "to", quantity, unit FROM edge_rows) AS edge),
 (SELECT coalesce(json_object_agg(status, lots ORDER BY status), '{{}}')::text FROM
      (SELECT status, count(*) AS lots FROM node_rows GROUP BY status) AS by_status),
 (SELECT count(*) FROM node_rows), (SELECT max(depth) FROM node_rows),
 (SELECT count(*) FROM edge_rows)
"""


def _statement(dialect: str, direction: Direction):
    (near, far), (source, target) = _ENDS[direction], _FLOW[direction]
    names = {"near": near, "far": far, "source": source, "target": target}
    if dialect == "postgresql":
        return text(_POSTGRESQL.format(root="CAST(:root AS integer)", **names))
    return text(_SQLITE.format(root=":root", **names))


def trace_json(session: Session | Connection, lot_number: str,
               direction: Direction | str) -> str:
    """The whole graph reachable from the lot, as the JSON text of the API's answer:
    ``root``, ``direction``, ``nodes`` (one per lot with material, supplier, status and
    ``depth`` = shortest distance from the root; in no particular order: sorting 10,000
    lots would cost a fifth of the answer, and a client sorts as it needs), ``edges`` (one per
    consumption entry, ``from`` the consumed lot ``to`` the lot made from it, whatever the
    direction) and ``counts`` (lots, edges, max_depth, by_status). NotFound when there is no
    such lot. Reads only."""
    direction = Direction(direction)
    root_id = session.execute(select(LOTS.c.id).where(LOTS.c.number == lot_number)).scalar()
    if root_id is None:
        raise NotFound(f"no lot {lot_number!r}")
    dialect = session.get_bind().dialect.name if isinstance(session, Session) \
        else session.dialect.name
    nodes, edges, by_status, lots, max_depth, edge_count = session.execute(
        _statement(dialect, direction), {"root": root_id, "max_depth": MAX_DEPTH}).one()
    head = json.dumps({"root": lot_number, "direction": direction.value})[:-1]
    counts = f'{{"lots":{lots},"edges":{edge_count},"max_depth":{max_depth},' \
             f'"by_status":{by_status}}}'
    return f'{head},"nodes":{nodes},"edges":{edges},"counts":{counts}}}'


def trace(session: Session | Connection, lot_number: str, direction: Direction | str
          ) -> dict[str, Any]:
    """``trace_json`` parsed: the graph as Python data (quantities decimal strings, dates
    ISO strings)."""
    return json.loads(trace_json(session, lot_number, direction))
