"""Rate limits on failed credential checks, per client address and per username.

Every password check (login, token request, password change, e-signature) passes here
before the slow hash runs: a client address or a username that has used up its allowance of
failures is refused with 429 and ``Retry-After``, without hashing and without writing
anything. Only failures are counted, so people who type their password right are never
slowed down, however often they sign.

The counters live in the ``limits`` library's storage (the one Flask-Limiter uses):
``memory://`` by default, per process; a ``redis://`` or ``memcached://`` URI shares them
between the server's workers.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import has_request_context, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from qms.errors import TooManyAttempts

# the client of a check made outside any request (a command run on the server itself)
LOCAL_CLIENT = "local"


@dataclass(frozen=True)
class Tally:
    """Unknown-user failures of one client address in the current interval, this one
    included."""
    client: str
    interval_start: datetime
    count: int


@dataclass
class AttemptThrottle:
    enabled: bool
    per_address: list[RateLimitItem]
    per_username: list[RateLimitItem]
    window: MovingWindowRateLimiter
    storage: Storage
    unknown_user_interval: timedelta

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AttemptThrottle:
        storage = storage_from_string(settings["RATELIMIT_STORAGE_URI"])
        return cls(enabled=settings["RATELIMIT_ENABLED"],
                   per_address=parse_many(settings["RATELIMIT_FAILURES_PER_ADDRESS"]),
                   per_username=parse_many(settings["RATELIMIT_FAILURES_PER_USERNAME"]),
                   window=MovingWindowRateLimiter(storage), storage=storage,
                   unknown_user_interval=timedelta(
                       minutes=settings["RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES"]))

    def tally_unknown_user(self) -> Tally:
        """Count one failure at an unknown username for the caller's address in the current
        fixed interval (aligned to the epoch, so every worker agrees on its bounds)."""
        seconds = int(self.unknown_user_interval.total_seconds())
        index = int(time.time()) // seconds
        client = address_block(client_address())
        count = self.storage.incr(f"qms/unknown-user/{client}/{index}", seconds)
        return Tally(client, datetime.fromtimestamp(index * seconds, timezone.utc), count)

    def check(self, username: str) -> None:
        """Raise TooManyAttempts (429) when the caller's address or ``username`` has no
        failures left in some window; counts nothing."""
        if not self.enabled:
            return
        for item, key in self._limits(username):
            if not self.window.test(item, *key):
                seconds = self._seconds_left(item, key)
                raise TooManyAttempts("too many failed attempts from this address or for this "
                                      f"username; try again in {seconds} s", retry_after=seconds)

    def count_failure(self, username: str) -> None:
        """Count one failed check against the caller's address and against ``username``."""
        if not self.enabled:
            return
        for item, key in self._limits(username):
            self.window.hit(item, *key)

    def _limits(self, username: str):
        address = address_block(client_address())
        name = username.strip().casefold()[:150]
        return [*((item, ("address", address)) for item in self.per_address),
                *((item, ("username", name)) for item in self.per_username)]

    def _seconds_left(self, item: RateLimitItem, key: tuple[str, str]) -> int:
        reset_at = self.window.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset_at - time.time()))


def address_block(address: str) -> str:
    """The unit a per-address limit counts: an IPv4 address, or an IPv6 /64 (one end
    network, in which a client can choose any of 2**64 addresses)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


def client_address() -> str:
    """The address the request came from. Behind a reverse proxy it is the proxy's, unless
    ``[server] proxy_hops`` trusts that many X-Forwarded-For entries (qms.app applies
    werkzeug's ProxyFix): a header any client can send is never trusted by default."""
    if not has_request_context():
        return LOCAL_CLIENT
    return request.remote_addr or LOCAL_CLIENT
