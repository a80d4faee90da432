"""Worker process for the concurrency and crash tests.

    python audit_writer.py URL WORKER COUNT        COUNT audited writes, one line per commit
    python audit_writer.py URL WORKER hang         one write, prints READY, never commits

Each committed item id is printed only after its commit returned, so the parent knows
exactly which writes were acknowledged.
"""
from __future__ import annotations

import sys
import time

from audit_test_support import Item, audited_write
from audit import trail
from qms.db import Database, make_engine


def hang(database: Database, worker: str) -> None:
    with database.unit_of_work() as session:
        session.add(Item(name=f"{worker}-uncommitted"))
        session.flush()
        trail.append(session, actor=worker, action="test.item.created", data={"hang": True})
        print("READY", flush=True)
        time.sleep(600)  # the parent kills us here, inside the transaction


def main(url: str, worker: str, count: str) -> None:
    database = Database(make_engine(url))
    try:
        if count == "hang":
            hang(database, worker)
            return
        for number in range(int(count)):
            item_id = audited_write(database, f"{worker}-{number}", actor=worker)
            print(item_id, flush=True)
    finally:
        database.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:4])
