"""Failed credential checks at usernames that do not exist, audited in summary.

One audit event per guess would let anyone without an account write the trail full. So per
client (an address, or an IPv6 /64) and fixed interval (``[ratelimit]
unknown_user_audit_minutes``, aligned to the epoch) the failures are tallied in the database,
for every server worker alike, and the trail gets:

- ``identity.login.failed`` (actor ``anonymous``) at the 1st, 10th, 100th, ... failure of the
  interval, with the count so far and the name tried that time: the alarm while it goes on;
- ``identity.login.failed_total`` (actor ``system``) once the interval has ended, written by
  ``qms jobs``: the interval's total, and the last name tried and when. Every interval that
  opened with an event of the first kind is closed by exactly one of these.

A failure that reaches its tally only after the job closed it (its check began before the
interval ended and finished after the job ran) is audited on its own, so no failure is left
out of the trail's totals.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audit.canonical import utc_timestamp
from qms.audit_actions import AuditAction
from qms.auditing import SYSTEM_ACTOR, record_event
from qms.db import utcnow
from qms.identity.models import UnknownUserTally

ANONYMOUS = "anonymous"
WHY = "unknown user"


def count_failure(session: Session, *, client: str, username: str, purpose: str,
                  interval: timedelta, now: datetime | None = None) -> None:
    """Tally one failed check at the unknown ``username`` from ``client``; audit it when it is
    the 1st, 10th, 100th, ... of the client's interval. Flushes, never commits."""
    now = now or utcnow()
    start = interval_start(now, interval)
    data = {"username": username[:150], "purpose": purpose, "why": WHY,
            "client": client[:100], "interval_start": utc_timestamp(start)}
    failures = _tally(session, client[:100], start, username[:150], now)
    if failures is None:
        record_event(session, actor=ANONYMOUS, action=AuditAction.Identity.LOGIN_FAILED,
                     data={**data, "after_interval_total": True})
    elif _is_power_of_ten(failures):
        record_event(session, actor=ANONYMOUS, action=AuditAction.Identity.LOGIN_FAILED,
                     data={**data, "failures_in_interval": failures})


def close_ended_intervals(session: Session, *, interval: timedelta,
                          now: datetime | None = None) -> list[UnknownUserTally]:
    """Audit the total of every tally whose interval has ended, once (``closed_at``).
    Each tally is locked while it is closed, so a failure counted at the same moment is
    either in the total or audited on its own. Flushes, never commits."""
    now = now or utcnow()
    ended = session.scalars(
        select(UnknownUserTally)
        .where(UnknownUserTally.closed_at.is_(None),
               UnknownUserTally.interval_start <= now - interval)
        .order_by(UnknownUserTally.interval_start, UnknownUserTally.client)
        .with_for_update()).all()
    for tally in ended:
        tally.closed_at = now
        record_event(session, actor=SYSTEM_ACTOR, action=AuditAction.Identity.LOGIN_FAILED_TOTAL,
                     data={"why": WHY, "client": tally.client,
                           "interval_start": utc_timestamp(tally.interval_start),
                           "interval_end": utc_timestamp(tally.interval_start + interval),
                           "failures": tally.failures, "last_username": tally.last_username,
                           "last_failure_at": utc_timestamp(tally.last_failure_at)})
    return ended


def interval_start(now: datetime, interval: timedelta) -> datetime:
    """The start of the fixed interval holding ``now``, aligned to the epoch, so that every
    worker agrees on the bounds."""
    seconds = int(interval.total_seconds())
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, timezone.utc)


def _tally(session: Session, client: str, start: datetime, username: str,
           now: datetime) -> int | None:
    """Add one failure to the client's tally of the interval in one statement (parallel
    checks all count); the new count, or None when the tally was closed already."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(UnknownUserTally).values(
        client=client, interval_start=start, failures=1, last_username=username,
        last_failure_at=now)
    upsert = insert.on_conflict_do_update(
        index_elements=[UnknownUserTally.client, UnknownUserTally.interval_start],
        set_={"failures": UnknownUserTally.failures + 1,
              "last_username": insert.excluded.last_username,
              "last_failure_at": insert.excluded.last_failure_at},
        where=UnknownUserTally.closed_at.is_(None))
    return session.scalar(upsert.returning(UnknownUserTally.failures))


def _is_power_of_ten(count: int) -> bool:
    while count % 10 == 0:
        count //= 10
    return count == 1
