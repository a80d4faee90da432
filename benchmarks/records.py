"""The benchmark's record: a small table of its own and the two ways of writing a row.

A *plain* write is one transaction inserting one row; an *audited* write is the same
transaction plus the audit event documenting it, as the one rule for writes requires. Both
go through Database.unit_of_work(), so SQLite writers start with BEGIN IMMEDIATE and commit
with the configured synchronous mode, exactly as the application does.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from audit import trail
from qms.db import Database

# its own MetaData: the benchmark table is not part of the application schema
bench_metadata = MetaData()

bench_records = Table(
    "bench_records", bench_metadata,
    Column("id", Integer, primary_key=True),
    # human numbers are unique, as record numbers are in the application
    Column("number", String(40), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("payload", Text, nullable=False),
)

_MATERIALS = ("API-0042", "EXC-0107", "PKG-0311", "SOL-0020", "CAP-0008")
_UNITS = ("kg", "g", "L", "pcs")
_ACTION = "bench.record.created"


@dataclass(frozen=True)
class BenchRecord:
    number: str
    title: str
    details: dict

    def row(self) -> dict:
        return {"number": self.number, "title": self.title,
                "payload": json.dumps(self.details, sort_keys=True)}

    def snapshot(self) -> dict:
        """The record's fields as an audit event carries them (``after``)."""
        return {"number": self.number, "title": self.title, **self.details}


def make_records(label: str, count: int) -> list[BenchRecord]:
    """``count`` records, the same for the same ``label`` on every run and machine."""
    rng = random.Random(label)  # str seeds hash deterministically (sha512)
    return [_record(rng, f"{label}-{index:05d}") for index in range(count)]


def decimal_text(hundredths: int) -> str:
    """A quantity with two decimals as the audit format wants it: a string, never a float."""
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _record(rng: random.Random, number: str) -> BenchRecord:
    material = rng.choice(_MATERIALS)
    quantity = decimal_text(rng.randint(1, 99999))
    details = {"material": material, "lot": f"{material}-L{rng.randint(1, 9999):04d}",
               "quantity": quantity, "unit": rng.choice(_UNITS), "status": "quarantine",
               "site": "Basel", "line": f"L{rng.randint(1, 6)}",
               "comment": "received in good condition, seals intact, CoA attached"}
    return BenchRecord(number, f"Receipt of {details['lot']} ({quantity} {details['unit']})",
                       details)


def write_plain(database: Database, record: BenchRecord, actor: str) -> None:
    """One transaction inserting one row; ``actor`` is unused, as nothing is audited."""
    with database.unit_of_work() as session:
        session.execute(bench_records.insert(), record.row())


def write_audited(database: Database, record: BenchRecord, actor: str) -> None:
    """The same insert plus its audit event, committed together."""
    with database.unit_of_work() as session:
        session.execute(bench_records.insert(), record.row())
        trail.append(session, actor=actor, action=_ACTION,
                     data={"version": 1, "after": record.snapshot()},
                     entity=("bench_record", record.number))


WRITES = {"plain": write_plain, "audited": write_audited}
