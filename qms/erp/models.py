"""The outbox of ERP events and the state of their delivery.

``erp_events`` is evidence: one row per event, written in the transaction that made the
decision, never changed (append-only, trigger). ``seq`` is gapless and assigned under the audit
head lock, so events become visible in ``seq`` order: a consumer that has read up to ``seq``
n has missed nothing below it, which makes the pull cursor stable and the order per lot the
order of ``seq``. ``erp_deliveries`` is operational state (one row per event and channel:
attempts, next attempt, outcome); every attempt is also an audit event.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qms.db import Base, UTCDateTime

EVENT_TYPES = ("batch.released", "batch.rejected", "lot.status_changed", "inspection.decided")
PENDING, DELIVERED, PARKED = "pending", "delivered", "parked"


class ErpEvent(Base):
    __tablename__ = "erp_events"
    __table_args__ = (
        CheckConstraint("type IN ('batch.released', 'batch.rejected', 'lot.status_changed', "
                        "'inspection.decided')", name="ck_erp_events_type"),
        Index("ix_erp_events_lot_seq", "lot", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    lot: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(Text)  # the event's JSON, as delivered


class ErpDelivery(Base):
    """Where one event stands on one channel (``file``, ``webhook:<name>``; the pull feed
    records acknowledgements here as channel ``pull:<username>``)."""

    __tablename__ = "erp_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'parked')",
                        name="ck_erp_deliveries_state"),
        Index("ix_erp_deliveries_channel_state", "channel", "state", "event_seq"),
    )

    channel: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_seq: Mapped[int] = mapped_column(ForeignKey("erp_events.seq"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
