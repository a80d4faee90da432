"""Recorded verifications of the audit chain: what the audit page shows.

Verifying a million events takes seconds, too long for every visit to the audit page. So
the scheduler (`qms jobs`) verifies on its interval and records the outcome here, and the
page shows the last one with its time; whoever may read the trail can ask for a fresh one
there. Each row is kept (append-only): the record of the trail's periodic review that an
inspector asks for. The API's GET /api/v1/audit/verify still verifies live and records
nothing (a GET writes nothing).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from qms.auditing import verify_trail
from qms.db import Base, UTCDateTime, utcnow

SCHEDULER = None  # requested_by of the scheduler's verifications


class ChainCheck(Base):
    """One verification of the whole audit chain and its checkpoints (audit.verify)."""

    __tablename__ = "audit_chain_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    requested_by: Mapped[str | None] = mapped_column(String(150))  # None: the scheduler
    verdict: Mapped[str] = mapped_column(String(20))  # INTACT | BROKEN | UNANCHORED
    events_checked: Mapped[int] = mapped_column(Integer)
    checkpoints_checked: Mapped[int] = mapped_column(Integer)
    head_seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    first_bad_seq: Mapped[int | None] = mapped_column(Integer)
    problem: Mapped[str | None] = mapped_column(Text)

    @property
    def ok(self) -> bool:
        return self.verdict == "INTACT"


def check_chain(database, requested_by: str | None = SCHEDULER) -> ChainCheck:
    """Verify the chain on a reader (no lock held for the seconds it takes), then record
    the outcome in a transaction of its own."""
    started = utcnow()
    with database.reading() as session:
        result = verify_trail(session)
    with database.unit_of_work() as session:
        check = ChainCheck(
            started_at=started, finished_at=utcnow(), requested_by=requested_by,
            verdict=result.verdict, events_checked=result.events_checked,
            checkpoints_checked=result.checkpoints_checked, head_seq=result.head_seq,
            head_hash=result.head_hash, first_bad_seq=result.first_bad_seq,
            problem=result.problem)
        session.add(check)
        session.flush()
        session.expunge(check)
    return check


def last_check(session: Session) -> ChainCheck | None:
    return session.scalars(select(ChainCheck).order_by(ChainCheck.finished_at.desc(),
                                                       ChainCheck.id.desc()).limit(1)).first()


def overdue(check: ChainCheck | None, interval_minutes: int, now: datetime) -> bool:
    """No verification within two scheduler intervals: the scheduler is probably not
    running, and the page says so rather than showing an old verdict as current."""
    return check is None or now - check.finished_at > timedelta(minutes=2 * interval_minutes)
