"""The pull feed: ERP service accounts read events after a cursor and acknowledge them.

The cursor is opaque to clients (base64 of ``v1:<seq>``) and stable: ``seq`` is gapless and
commits in order (qms.erp.models), so reading after a cursor never skips an event that
commits later. Without a cursor a consumer starts at its first unacknowledged event, so an
event stays available until it is acknowledged. Acknowledgements are kept per consumer as
delivery rows of the channel ``pull:<username>``.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import record_event
from qms.db import utcnow
from qms.erp.models import DELIVERED, ErpDelivery, ErpEvent
from qms.errors import InvalidInput

CURSOR_PREFIX = "v1:"


def channel_of(username: str) -> str:
    return f"pull:{username}"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq a cursor stands for; 422 naming ``after`` when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(CURSOR_PREFIX)
    if not text.startswith(CURSOR_PREFIX) or not number.isdigit() or len(number) > 15:
        raise InvalidInput("not a cursor of this feed: use next_cursor as given", field="after")
    return int(number)


@dataclass(frozen=True)
class Page:
    payloads: list[str]
    next_cursor: str
    first: int | None = None  # the seqs of the first and last event, when there are events
    last: int | None = None


def read_events(session: Session, consumer: str, cursor: str | None, limit: int) -> Page:
    """The events after the cursor (or the consumer's acknowledged prefix), in seq order.
    Reads only."""
    after = decode_cursor(cursor) if cursor else _acknowledged_prefix(session, consumer)
    rows = session.execute(select(ErpEvent.seq, ErpEvent.payload).where(ErpEvent.seq > after)
                           .order_by(ErpEvent.seq).limit(limit)).all()
    if not rows:
        return Page([], encode_cursor(after))
    return Page([row.payload for row in rows], encode_cursor(rows[-1].seq), rows[0].seq,
                rows[-1].seq)


def record_read(session: Session, consumer: str, page: Page) -> None:
    """A read that returned events is a delivery attempt, audited; an empty poll is not (an
    event per poll would bury the trail)."""
    if page.payloads:
        record_event(session, actor=consumer, action=AuditAction.Erp.FEED_READ,
                     data={"first_sequence": page.first, "last_sequence": page.last,
                           "events": len(page.payloads)})


def _acknowledged_prefix(session: Session, consumer: str) -> int:
    """The seq just below the consumer's first unacknowledged event."""
    unacknowledged = select(func.min(ErpEvent.seq)).where(~exists().where(
        ErpDelivery.channel == channel_of(consumer), ErpDelivery.event_seq == ErpEvent.seq,
        ErpDelivery.state == DELIVERED))
    first = session.scalar(unacknowledged)
    if first is not None:
        return first - 1
    return session.scalar(select(func.max(ErpEvent.seq))) or 0


def acknowledge(session: Session, consumer: str, event_ids: Sequence[str]) -> int:
    """Mark events delivered to ``consumer``; acknowledging twice is harmless (idempotent).
    An unknown event id -> 422 naming it, nothing written. Returns how many were new."""
    wanted = list(dict.fromkeys(event_ids))
    known = dict(session.execute(select(ErpEvent.event_id, ErpEvent.seq)
                                 .where(ErpEvent.event_id.in_(wanted))).all())
    unknown = [event_id for event_id in wanted if event_id not in known]
    if unknown:
        raise InvalidInput(f"no such event: {', '.join(unknown[:5])}", field="event_ids")
    channel, now = channel_of(consumer), utcnow()
    done = set(session.scalars(select(ErpDelivery.event_seq).where(
        ErpDelivery.channel == channel, ErpDelivery.event_seq.in_(known.values()),
        ErpDelivery.state == DELIVERED)))
    new = sorted(seq for seq in known.values() if seq not in done)
    for seq in new:
        session.merge(ErpDelivery(channel=channel, event_seq=seq, state=DELIVERED, attempts=1,
                                  delivered_at=now))
    session.flush()
    if new:
        record_event(session, actor=consumer, action=AuditAction.Erp.MESSAGE_ACKNOWLEDGED,
                     data={"channel": channel, "sequences": new,
                           "event_ids": [e for e in wanted if known[e] in set(new)]})
    return len(new)
