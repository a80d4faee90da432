"""The signatures table and the users' signing keys. A signature is never changed or removed:
it names the record version and the sha256 of that version's content, so a later edit leaves
it valid for the version it signed and visibly not for the new one. How a key is sealed,
opened and replaced is qms.esign.keys."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from qms.db import Base, UTCDateTime, utcnow


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


class SigningKey(Base):
    """One user's Ed25519 key pair, the private key only ever wrapped (qms.esign.keys)."""

    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    wrapped_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    scrypt_log_n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_reason: Mapped[str | None] = mapped_column(String(200))
    # set only by migration 0011 on keys that existed before it: they may have been sealed
    # under a temporary password once, so they are replaced before they sign again
    replace_before_signing: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())
