"""The trace against a brute-force search on random genealogies (hypothesis): the same lots,
the same edges, and depths equal to the shortest distances, both ways, diamonds included."""
from __future__ import annotations

import itertools
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import insert, select

from qms.materials.models import Batch, Lot, LotConsumption, Material
from qms.materials.trace import trace

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
STAMP = {"version": 1, "created_at": NOW, "created_by": "t", "updated_at": NOW,
         "updated_by": "t"}


@st.composite
def genealogies(draw):
    """(lot count, edges input -> output with input < output, root index)."""
    size = draw(st.integers(min_value=1, max_value=30))
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    edges = draw(st.lists(st.sampled_from(pairs), max_size=60, unique=True)) if pairs else []
    return size, edges, draw(st.integers(min_value=0, max_value=size - 1))


def _base(connection) -> tuple[int, int]:
    """A material and one batch that every test edge is booked to (the trace ignores it)."""
    material = connection.execute(insert(Material).values(
        number="HYP-MAT", state="active", name="Hypothesis", kind="intermediate", unit="kg",
        shelf_life_days=None, description="", **STAMP).returning(Material.id)).scalar_one()
    lot = connection.execute(insert(Lot).values(
        number="HYP-BATCH", state="quarantine", material_id=material, origin="produced",
        quantity=Decimal(1), unit="kg", **STAMP).returning(Lot.id)).scalar_one()
    connection.execute(insert(Batch).values(number="HYP-BATCH", state="in_production",
                                            material_id=material, lot_id=lot, line="L",
                                            quantity=Decimal(1), unit="kg", **STAMP))
    batch = connection.execute(select(Batch.id)).scalar_one()
    return material, batch


def _insert(connection, prefix: str, size: int, edges, material: int, batch: int) -> list[str]:
    numbers = [f"{prefix}-{i}" for i in range(size)]
    ids = [connection.execute(insert(Lot).values(
        number=number, state="released", material_id=material, origin="produced",
        quantity=Decimal(10), unit="kg", **STAMP).returning(Lot.id)).scalar_one() for number in numbers]
    if edges:
        connection.execute(insert(LotConsumption), [
            {"batch_id": batch, "input_lot_id": ids[i], "output_lot_id": ids[j],
             "quantity": Decimal(1), "unit": "kg", "consumed_at": NOW, "consumed_by": "t"}
            for i, j in edges])
    return numbers


def _brute_force(size: int, edges, root: int, backward: bool) -> dict[int, int]:
    following = {i: [] for i in range(size)}
    for i, j in edges:
        (following[j].append(i) if backward else following[i].append(j))
    depths, queue = {root: 0}, deque([root])
    while queue:
        node = queue.popleft()
        for other in sorted(following[node]):
            if other not in depths:
                depths[other] = depths[node] + 1
                queue.append(other)
    return depths


def test_trace_matches_a_brute_force_search(app):
    engine = app.extensions["qms"].db.engine
    with engine.begin() as connection:
        material, batch = _base(connection)
    counter = itertools.count()

    @settings(max_examples=50, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(genealogies())
    def check(genealogy):
        size, edges, root = genealogy
        with engine.begin() as connection:
            numbers = _insert(connection, f"G{next(counter)}", size, edges, material, batch)
        with engine.connect() as connection:
            for direction, backward in (("backward", True), ("forward", False)):
                result = trace(connection, numbers[root], direction)
                expected = _brute_force(size, edges, root, backward)
                assert {n["number"]: n["depth"] for n in result["nodes"]} == \
                    {numbers[i]: d for i, d in expected.items()}
                assert {(e["from"], e["to"]) for e in result["edges"]} == \
                    {(numbers[i], numbers[j]) for i, j in edges
                     if i in expected and j in expected}
                assert result["counts"]["lots"] == len(expected)
    check()
