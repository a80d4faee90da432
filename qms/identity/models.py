"""Users, roles, password history and API tokens.

Users are never deleted and usernames never reused (Part 11 §11.100(a)): deactivation sets
``active = False`` and keeps the row, so every signature and audit event keeps naming a
real, unique person.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qms.db import Base, UTCDateTime, utcnow

# what a username is: lowercase letters, digits and . _ - (2-63 characters, starting with a
# letter); matched whole (fullmatch), so that no trailing newline slips through
USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,62}")


def is_username(name: str) -> bool:
    """True when ``name`` has the form of a username (it may still name no account)."""
    return USERNAME_PATTERN.fullmatch(name) is not None


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # service accounts (e.g. the ERP) authenticate with tokens only and never sign
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_temporary: Mapped[bool] = mapped_column(Boolean, default=True)
    # failures toward the lockout since the last success, and how many of them came from
    # each client address ({"192.0.2.1": 4}): one address counts at most threshold - 1, so it
    # cannot lock the account by itself (qms.identity.authentication); meaningful only while
    # failed_attempts > 0
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures_by_client: Mapped[dict[str, int] | None] = mapped_column(JSON)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150))
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # part of every web session's id: raising it ends all of the user's sessions on the
    # server side (logout, idle timeout), even if a copy of the session cookie survives
    session_generation: Mapped[int] = mapped_column(Integer, default=0)

    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> list[str]:
        return sorted(row.role for row in self.role_rows)

    @property
    def locked(self) -> bool:
        return self.locked_at is not None

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(50), primary_key=True)
    user: Mapped[User] = relationship(back_populates="role_rows")


class PasswordHistory(Base):
    """Previous password hashes, for the no-reuse rule."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token. Only its sha256 is stored: the token itself is 256 random bits, so a
    fast hash is enough and the database never holds a usable credential."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    # first characters of the token, so a user can tell tokens apart without the secret
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))  # "user" | "service"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(lazy="joined")


class UnknownUserTally(Base):
    """Failed credential checks at usernames that do not exist, from one client (address or
    IPv6 /64) in one interval: the audit trail gets their summary (qms.identity.
    unknown_users), not one event per guess. ``closed_at`` is set when the interval's total
    has been audited; a closed tally counts nothing more."""

    __tablename__ = "unknown_user_tallies"
    __table_args__ = (UniqueConstraint("client", "interval_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer)
    last_username: Mapped[str] = mapped_column(String(150))
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
