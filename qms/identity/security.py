"""The security settings and helpers a service needs, built once per app from the config."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from passlib.context import CryptContext

from qms.identity.passwords import HashedPassword, PasswordPolicy, dummy_hash, make_hasher
from qms.identity.roles import RoleTable
from qms.identity.throttle import AttemptThrottle


@dataclass
class Security:
    policy: PasswordPolicy
    hasher: CryptContext
    roles: RoleTable
    key_wrap_log_n: int
    token_hours: int
    token_idle: timedelta
    service_token_days: int
    throttle: AttemptThrottle
    _dummy: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings, roles: RoleTable) -> Security:
        return cls(policy=PasswordPolicy.from_settings(settings), hasher=make_hasher(settings),
                   roles=roles, key_wrap_log_n=settings["SECURITY_KEY_WRAP_SCRYPT_LOG_N"],
                   token_hours=settings["SECURITY_API_TOKEN_HOURS"],
                   token_idle=timedelta(minutes=settings["SECURITY_API_TOKEN_IDLE_MINUTES"]),
                   service_token_days=settings["SECURITY_SERVICE_TOKEN_DAYS"],
                   throttle=AttemptThrottle.from_settings(settings))

    def hash_password(self, password: str) -> HashedPassword:
        """argon2id of ``password``: slow, so called before any write transaction opens."""
        return HashedPassword(password, self.hasher.hash(password))

    def dummy_hash(self) -> str:
        if not self._dummy:
            self._dummy = dummy_hash(self.hasher)
        return self._dummy
