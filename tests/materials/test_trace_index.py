"""The trace's in-memory index (qms.materials.genealogy) never answers from stale data: what
changed through the services since the last trace shows in the next one, and an answer from a
warm index equals one from an index built afresh."""
from __future__ import annotations

from datetime import date, timedelta

import sqlite3
from decimal import Decimal

import pytest
from sqlalchemy import insert, update

from audit import trail
from qms.auditing import record_event
from qms.db import make_engine
from qms.materials import genealogy, trace as trace_module
from qms.materials.models import Lot, LotConsumption
from qms.materials.trace import trace
from tests.materials.test_trace_graphs import NOW, STAMP, _base

pytestmark = pytest.mark.usefixtures("_own_indexes")


@pytest.fixture
def _own_indexes(monkeypatch):
    """A registry of indexes for this test alone (a test may empty it to compare)."""
    monkeypatch.setattr(genealogy, "_indexes", genealogy.weakref.WeakKeyDictionary())


def _chain(connection, state: str, size: int, entries: int | None = None
           ) -> tuple[int, list[int]]:
    """Lots C-0 .. C-(size-1) in ``state``, the first ``entries`` of them (all but the last
    by default) each consumed into the next: (the batch entries are booked to, lot ids)."""
    material, batch = _base(connection)
    lots = [connection.execute(insert(Lot).values(
        number=f"C-{i}", state=state, material_id=material, origin="produced", quantity=Decimal(1),
        unit="kg", **STAMP).returning(Lot.id)).scalar_one() for i in range(size)]
    for i in range(size - 1 if entries is None else entries):
        connection.execute(insert(LotConsumption).values(
            batch_id=batch, input_lot_id=lots[i], output_lot_id=lots[i + 1], quantity=Decimal(1),
            unit="kg", consumed_at=NOW, consumed_by="t"))
    return batch, lots


def _cold(engine, number: str, direction: str) -> dict:
    """The same trace from an index built afresh."""
    genealogy._indexes.pop(engine, None)
    with engine.connect() as connection:
        return trace(connection, number, direction)


def _canonical(answer: dict) -> dict:
    """Node and edge order within one depth is unspecified: compare them as sorted lists."""
    return {**answer, "nodes": sorted(answer["nodes"], key=lambda n: n["number"]),
            "edges": sorted(answer["edges"], key=lambda e: (e["from"], e["to"], e["quantity"]))}


def test_changes_since_the_last_trace_show_in_the_next(app, basics, team):
    m = basics
    m.material("IM-GRAN", kind="intermediate", shelf_life_days=90)
    api = m.received("RM-API", quantity="100")
    granulate = m.ok(m.produce("IM-GRAN", [{"lot_number": api, "quantity": "10"}]), 201)
    first = m.trace(api, "forward")
    assert {n["number"]: n["status"] for n in first["nodes"]} == {
        api: "released", granulate["number"]: "quarantine"}

    expiry = (date.today() + timedelta(days=30)).isoformat()
    m.ok(m.patch(team.production, f"/batches/{granulate['number']}", {"expires_on": expiry}))
    m.ok(m.patch(team.reviewer, "/materials/IM-GRAN", {"name": "Granulate, renamed"}))
    m.ok(m.transition(team.approver, f"/lots/{api}", "reject", meaning="rejected",
                      reason="supplier recall"))
    second = m.trace(api, "forward")
    nodes = {n["number"]: n for n in second["nodes"]}
    assert nodes[api]["status"] == "rejected"
    assert nodes[granulate["number"]]["expires_on"] == expiry
    assert nodes[granulate["number"]]["material_name"] == "Granulate, renamed"
    assert second["counts"]["by_status"] == {"quarantine": 1, "rejected": 1}

    engine = app.extensions["qms"].db.engine
    assert _canonical(second) == _canonical(_cold(engine, api, "forward"))


def test_entries_consumed_since_the_last_trace_show_in_the_next(app, basics):
    m = basics
    m.material("IM-GRAN", kind="intermediate", shelf_life_days=90)
    api = m.received("RM-API", quantity="100")
    first = m.ok(m.produce("IM-GRAN", [{"lot_number": api, "quantity": "10"}]), 201)
    assert m.trace(api, "forward")["counts"]["lots"] == 2
    assert m.trace(first["number"], "backward")["counts"]["lots"] == 2
    second = m.ok(m.produce("IM-GRAN", [{"lot_number": api, "quantity": "5"}]), 201)
    m.ok(m.post(m.team.production, f"/batches/{first['number']}/inputs",
                {"inputs": [{"lot_number": api, "quantity": "2.5"}], "reason": "top-up"}))

    forward = m.trace(api, "forward")
    assert {(e["to"], e["quantity"]) for e in forward["edges"]} == {
        (first["number"], "10"), (first["number"], "2.5"), (second["number"], "5")}
    backward = m.trace(first["number"], "backward")
    assert backward["counts"] == {"lots": 2, "edges": 2, "max_depth": 1,
                                  "by_status": {"quarantine": 1, "released": 1}}
    engine = app.extensions["qms"].db.engine
    assert _canonical(forward) == _canonical(_cold(engine, api, "forward"))


def test_entries_past_the_overflow_bound_rebuild_the_direction(app, monkeypatch):
    """Entries appended after the index was built go to the overflow; past the bound the
    direction is read again. Either way the answers are those of a cold index."""
    monkeypatch.setattr(genealogy, "REBUILD_AT_LEAST", 3)
    engine = app.extensions["qms"].db.engine
    with engine.begin() as connection:
        batch, lots = _chain(connection, "released", 12, entries=0)
    index_sizes = []
    for step in range(11):  # a chain C-0 -> C-1 -> ... grown one entry per step
        with engine.begin() as connection:
            connection.execute(insert(LotConsumption).values(
                batch_id=batch, input_lot_id=lots[step], output_lot_id=lots[step + 1],
                quantity=Decimal(1), unit="kg", consumed_at=NOW, consumed_by="t"))
        with engine.connect() as connection:
            forward = trace(connection, "C-0", "forward")
            backward = trace(connection, f"C-{step + 1}", "backward")
        assert forward["counts"]["max_depth"] == backward["counts"]["max_depth"] == step + 1
        assert {n["number"]: n["depth"] for n in backward["nodes"]} == {
            f"C-{i}": step + 1 - i for i in range(step + 2)}
        index_sizes.append(len(genealogy.index_for(engine)._directions["forward"].entries))
    # built with one entry, read again twice past the bound of three in the overflow
    assert index_sizes[0] == 1 and len(set(index_sizes)) == 3
    assert forward == _cold(engine, "C-0", "forward")


def test_a_trace_in_a_transaction_that_wrote_is_refused(app, basics, uow):
    api = basics.received("RM-API")
    with pytest.raises(RuntimeError, match="has not written"):
        with uow() as session:
            record_event(session, actor="system", action="test.write", data={})
            trace(session, api, "forward")


def test_another_database_behind_the_same_index_starts_over(app, app_config, tmp_path,
                                                            monkeypatch, backend):
    """One index shown two databases in turn, copies of one another up to the moment they
    diverged (as after a restore behind a running server): the same shape and seq, other
    statuses. The second answer is the second database's: its audit chain does not run
    through the head the index saw last."""
    if backend != "sqlite":
        pytest.skip("one backend is enough: the check is the same SQL on both")
    engine = app.extensions["qms"].db.engine
    with engine.begin() as connection:
        _chain(connection, "released", 3)
    copy = tmp_path / "copy.sqlite3"
    with sqlite3.connect(app_config["DATABASE_URL"].removeprefix("sqlite:///")) as source, \
            sqlite3.connect(copy) as target:
        source.backup(target)  # the pages in the write-ahead log included
    shared = genealogy.GenealogyIndex()
    monkeypatch.setattr(trace_module, "index_for", lambda engine: shared)
    answers = []
    for url, state in ((app_config["DATABASE_URL"], "released"), (f"sqlite:///{copy}",
                                                                  "rejected")):
        other = make_engine(url)
        with other.begin() as connection:
            trail.append(connection, actor="system", action="test.diverge",
                         data={"database": state})
            connection.execute(update(Lot).values(state=state))
        with other.connect() as connection:
            answers.append(trace(connection, "C-0", "forward"))
        other.dispose()
    assert [a["counts"]["by_status"] for a in answers] == [{"released": 3}, {"rejected": 3}]


def test_texts_read_before_another_trace_caught_up_are_not_kept():
    """A trace reads texts after its catch-up; if another trace has caught up with later
    changes meanwhile, the first one's texts may predate them and are not kept."""
    index = genealogy.GenealogyIndex()
    index.head = 7
    text = (1, "released", "{")
    index.keep_lots({1: text}, as_of=6)
    assert index.lots == {}
    index.keep_lots({1: text}, as_of=7)
    assert index.lots == {1: text}


def test_warming_reads_both_directions_before_the_first_trace(app):
    engine = app.extensions["qms"].db.engine
    with engine.begin() as connection:
        _chain(connection, "released", 4)
    genealogy.warm(engine)
    index = genealogy.index_for(engine)
    assert {direction: len(index._directions[direction].entries)
            for direction in ("backward", "forward")} == {"backward": 3, "forward": 3}
    with engine.connect() as connection:
        assert trace(connection, "C-3", "backward")["counts"]["max_depth"] == 3
