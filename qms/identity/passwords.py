"""Password hashing (argon2id through passlib's API) and the password policy."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from passlib.context import CryptContext

UNTIL_UNLOCKED = 0  # [security] lockout_minutes: no expiry, an administrator must act


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    history: int
    expiry_days: int
    lockout_threshold: int
    # 0 (UNTIL_UNLOCKED): a lockout lasts until an administrator unlocks or resets
    lockout_minutes: int = 30

    @classmethod
    def from_settings(cls, settings) -> PasswordPolicy:
        return cls(min_length=settings["SECURITY_PASSWORD_MIN_LENGTH"],
                   history=settings["SECURITY_PASSWORD_HISTORY"],
                   expiry_days=settings["SECURITY_PASSWORD_EXPIRY_DAYS"],
                   lockout_threshold=settings["SECURITY_LOCKOUT_THRESHOLD"],
                   lockout_minutes=settings["SECURITY_LOCKOUT_MINUTES"])

    def lockout_over(self, locked_at: datetime, now: datetime) -> bool:
        """True when a lockout that began at ``locked_at`` has run its configured time."""
        if self.lockout_minutes == UNTIL_UNLOCKED:
            return False
        return now - locked_at >= timedelta(minutes=self.lockout_minutes)

    def expired(self, changed_at: datetime | None, now: datetime) -> bool:
        if self.expiry_days == 0 or changed_at is None:
            return False
        return now - changed_at > timedelta(days=self.expiry_days)

    def problems(self, password: str, username: str) -> list[str]:
        """What is wrong with a proposed password (empty when acceptable)."""
        found = []
        if len(password) < self.min_length:
            found.append(f"must be at least {self.min_length} characters long")
        if password.strip() != password:
            found.append("must not start or end with whitespace")
        if username and username.lower() in password.lower():
            found.append("must not contain the username")
        if len(set(password)) < 5:
            found.append("must use at least 5 different characters")
        return found


@dataclass(frozen=True)
class HashedPassword:
    """A password with its argon2 hash, made before the transaction that stores it: hashing
    takes about 0.2 s at production cost, and a write lock held meanwhile would stall other
    writers (on SQLite, all of them)."""
    text: str = field(repr=False)
    hash: str = field(repr=False)


def make_hasher(settings) -> CryptContext:
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__rounds=settings["SECURITY_ARGON2_TIME_COST"],
        argon2__memory_cost=settings["SECURITY_ARGON2_MEMORY_KIB"],
        argon2__parallelism=settings["SECURITY_ARGON2_PARALLELISM"],
    )


# verified against when a username does not exist, so that unknown users cost the same time
def dummy_hash(hasher: CryptContext) -> str:
    return hasher.hash("not-a-real-password-0000")
