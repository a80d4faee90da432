"""The signatures table. A signature is never changed or removed: it names the record version
and the sha256 of that version's content, so a later edit leaves it valid for the version it
signed and visibly not for the new one."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qms.db import Base, UTCDateTime


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = (Index("ix_signatures_record", "record_type", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(40))  # the record's number
    record_version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    meaning: Mapped[str] = mapped_column(String(20))
    signer: Mapped[str] = mapped_column(String(150))  # username
    name: Mapped[str] = mapped_column(String(200))  # printed full name at the time of signing
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(100))  # base64 of the 64-byte Ed25519 signature
    # the exact signed bytes (canonical JSON), so a verifier needs nothing but this and the key
    signed_payload: Mapped[str] = mapped_column(Text)
