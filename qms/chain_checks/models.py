"""A recorded verification of the audit chain (qms.chain_checks)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qms.db import Base, UTCDateTime


class ChainCheck(Base):
    """One verification of the whole audit chain and its checkpoints (audit.verify)."""

    __tablename__ = "audit_chain_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    requested_by: Mapped[str | None] = mapped_column(String(150))  # None: the scheduler
    verdict: Mapped[str] = mapped_column(String(20))  # INTACT | BROKEN | UNANCHORED
    events_checked: Mapped[int] = mapped_column(BigInteger)
    checkpoints_checked: Mapped[int] = mapped_column(Integer)
    head_seq: Mapped[int] = mapped_column(BigInteger)  # as audit_events.seq
    head_hash: Mapped[str] = mapped_column(String(64))
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(Text)

    @property
    def ok(self) -> bool:
        return self.verdict == "INTACT"
