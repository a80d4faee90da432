"""Verify the chain and record it; the last recorded verification and whether it is
overdue (qms.chain_checks)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qms.auditing import verify_trail
from qms.chain_checks.models import ChainCheck
from qms.db import utcnow

SCHEDULER = None  # requested_by of the scheduler's verifications
# clocks of the web and the scheduler processes may differ this much
CLOCK_TOLERANCE = timedelta(minutes=1)


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


def last_check(session: Session, now: datetime) -> ChainCheck | None:
    """The verification that began last: its verdict is the chain as of its start, so a
    slow check that began before a later one cannot hide the later one's finding. A row
    dated after ``now`` is not a verification this server made (future_dated)."""
    return session.scalars(
        select(ChainCheck).where(ChainCheck.started_at <= now + CLOCK_TOLERANCE)
        .order_by(ChainCheck.started_at.desc(), ChainCheck.id.desc()).limit(1)).first()


def future_dated(session: Session, now: datetime) -> ChainCheck | None:
    """A recorded verification dated after ``now``: written outside the application (the
    table takes inserts from the application's database role), to keep an old verdict on
    the page; the page says so instead of showing any verdict as current."""
    return session.scalars(
        select(ChainCheck).where((ChainCheck.started_at > now + CLOCK_TOLERANCE)
                                 | (ChainCheck.finished_at > now + CLOCK_TOLERANCE))
        .order_by(ChainCheck.id).limit(1)).first()


def overdue(check: ChainCheck | None, interval_minutes: int, now: datetime) -> bool:
    """No verification began within two scheduler intervals: the scheduler is probably not
    running, and the page says so rather than showing an old verdict as current."""
    return check is None or now - check.started_at > timedelta(minutes=2 * interval_minutes)
