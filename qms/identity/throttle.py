"""Rate limits on failed credential checks: per client address, per username, and per client
address *and* username.

Every password check (login, token request, password change, e-signature) is admitted here,
as one ``Attempt``, before the slow hash runs:

- A name that cannot be a username (``is_username``: "SAM", " sam") is limited per address
  only: it names no account, so it must not use up a real account's allowances. Every
  other name is counted exactly as written, as accounts are found.
- Only failures count. Each limit keeps its failures in a moving window (the ``limits``
  library, the layer under Flask-Limiter) and, beside it, a count of the checks in flight.
  A failure enters the windows when its check ends, before it leaves the in-flight count; a
  success just leaves. People who type their password right are never slowed down, however
  often they sign.
- Admission is atomic: a check is admitted only while the failures in a window plus the
  checks in flight, itself included, stay within the allowance. The in-flight count is
  taken first (``incr``, atomic in every storage), so of N parallel guesses at most as many
  run as the allowance has failures left; the rest are refused (429, ``Retry-After``) without
  hashing and without writing anything.
- The allowance per client address and username is below the account lockout threshold
  (``policy_problems``, checked at start-up): an address is stopped when its failures no
  longer count toward the lockout, as one address never locks an account by itself
  (qms.identity.authentication; docs/decisions.md, "Login under attack").

The counters live in the ``limits`` library's storage: ``memory://`` by default, per
process; a ``redis://`` URI shares them between the server's workers.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import has_request_context, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from qms.errors import TooManyAttempts
from qms.identity.models import is_username

# the client of a check made outside any request (a command run on the server itself)
LOCAL_CLIENT = "local"
# checks in flight are counted in buckets of this many seconds (kept for two): a check that
# is still running after a whole bucket has passed is no longer counted, so a crashed worker
# cannot hold an allowance for longer than that
IN_FLIGHT_BUCKET_SECONDS = 300


@dataclass(frozen=True)
class Limit:
    """One allowance (``4 per 30 minutes``) on one key (``("address+username", a, u)``)."""
    item: RateLimitItem
    key: tuple[str, ...]


@dataclass
class Attempt:
    """A credential check the throttle admitted, from ``client`` (an address or IPv6 /64).
    ``fail()`` it when the check fails; it is counted when the check ends."""
    client: str
    limits: list[Limit] = field(default_factory=list)
    failed: bool = False

    def fail(self) -> None:
        self.failed = True


@dataclass
class AttemptThrottle:
    enabled: bool
    per_address: list[RateLimitItem]
    per_username: list[RateLimitItem]
    per_address_and_username: list[RateLimitItem]
    window: MovingWindowRateLimiter
    storage: Storage
    # failures at unknown usernames are audited in summary per client and interval of this
    # length (qms.identity.unknown_users)
    unknown_user_interval: timedelta

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AttemptThrottle:
        storage = storage_from_string(settings["RATELIMIT_STORAGE_URI"])
        return cls(enabled=settings["RATELIMIT_ENABLED"],
                   per_address=parse_many(settings["RATELIMIT_FAILURES_PER_ADDRESS"]),
                   per_username=parse_many(settings["RATELIMIT_FAILURES_PER_USERNAME"]),
                   per_address_and_username=parse_many(
                       settings["RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"]),
                   window=MovingWindowRateLimiter(storage), storage=storage,
                   unknown_user_interval=timedelta(
                       minutes=settings["RATELIMIT_UNKNOWN_USER_AUDIT_MINUTES"]))

    def check(self, username: str) -> None:
        """Raise TooManyAttempts (429) when the caller's address or ``username`` has no
        failures left in some window. Counts nothing and reserves nothing: a cheap early
        refusal; ``attempt`` is what admits a check."""
        if not self.enabled:
            return
        for limit in self._limits(username):
            if not self.window.test(limit.item, *limit.key):
                raise self._refusal(limit, remaining=0)

    @contextmanager
    def attempt(self, username: str) -> Iterator[Attempt]:
        """Admit one credential check of ``username`` from the caller's address, or raise
        TooManyAttempts (429) before anything runs. The ``with`` body is the check; it
        ``fail()``s the attempt when the password (or the account) is refused. On leaving,
        a failure is counted in every window, then the check leaves the in-flight counts:
        in that order, so that no other check is admitted in between on a stale count."""
        attempt = Attempt(address_block(client_address()))
        if not self.enabled:
            yield attempt
            return
        slots = self._admit(attempt, self._limits(username))
        try:
            yield attempt
        finally:
            if attempt.failed:
                for limit in attempt.limits:
                    self.window.hit(limit.item, *limit.key)
            self._leave(slots)

    def _admit(self, attempt: Attempt, limits: list[Limit]) -> list[str]:
        slots: list[str] = []
        try:
            for limit in limits:
                in_flight = self._enter(limit, slots)
                remaining = self.window.get_window_stats(limit.item, *limit.key).remaining
                if in_flight > remaining:
                    raise self._refusal(limit, remaining)
                attempt.limits.append(limit)
        except BaseException:
            self._leave(slots)
            raise
        return slots

    def _enter(self, limit: Limit, slots: list[str]) -> int:
        """Count one more check in flight on ``limit``; return how many are (this one, those
        of this bucket and those still running from the previous one)."""
        bucket = int(time.time()) // IN_FLIGHT_BUCKET_SECONDS
        counter = _in_flight_key(limit, bucket)
        slots.append(counter)
        mine = self.storage.incr(counter, 2 * IN_FLIGHT_BUCKET_SECONDS)
        return mine + max(0, self.storage.get(_in_flight_key(limit, bucket - 1)))

    def _leave(self, slots: list[str]) -> None:
        # the bucket's counter outlives every check that entered it by a whole bucket: a
        # counter created in bucket b expires two buckets later, so this never recreates one
        for counter in slots:
            self.storage.incr(counter, 2 * IN_FLIGHT_BUCKET_SECONDS, amount=-1)

    def _limits(self, username: str) -> list[Limit]:
        address = address_block(client_address())
        per_address = [Limit(item, ("address", address)) for item in self.per_address]
        if not is_username(username):
            # no account has this name ("SAM", " sam"): its failures are the address's
            # alone, or variants of a real name would use up that account's allowance
            return per_address
        # the exact name, as accounts are found; the narrowest first: a refused pair then
        # uses up nothing of the wider allowances
        return [*(Limit(item, ("address+username", address, username))
                  for item in self.per_address_and_username),
                *(Limit(item, ("username", username)) for item in self.per_username),
                *per_address]

    def _refusal(self, limit: Limit, remaining: int) -> TooManyAttempts:
        # full: until its oldest failure leaves the window; else only checks in flight are
        # in the way, and one of them ends within a second or so
        seconds = self._seconds_left(limit) if remaining <= 0 else 1
        return TooManyAttempts("too many failed attempts from this address or for this "
                               f"username; try again in {wait_phrase(seconds)}",
                               retry_after=seconds)

    def _seconds_left(self, limit: Limit) -> int:
        reset_at = self.window.get_window_stats(limit.item, *limit.key).reset_time
        return max(1, math.ceil(reset_at - time.time()))


def _in_flight_key(limit: Limit, bucket: int) -> str:
    return f"qms/in-flight/{bucket}/{limit.item.key_for(*limit.key)}"


def wait_phrase(seconds: int) -> str:
    """How long to wait, as a person reads it: seconds below a minute, else whole minutes
    (rounded up, so nobody comes back too early)."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def policy_problems(settings: Mapping[str, Any]) -> list[str]:
    """What makes the rate limits incoherent with the account lockout (empty when nothing):

    - some per-address-and-username allowance must be below ``lockout_threshold``, so that an
      address is stopped by the time its failures stop counting toward the lockout;
    - every per-username allowance must reach ``lockout_threshold``, or a distributed attack
      would be throttled for ever instead of ending in the lockout and its urgent event;
    - no per-username allowance may be one address's to use up, or that address could shut
      a username out from everywhere.
    Rate limiting switched off is a site's deliberate choice and is not judged here."""
    if not settings["RATELIMIT_ENABLED"]:
        return []
    threshold = settings["SECURITY_LOCKOUT_THRESHOLD"]
    per_pair = settings["RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME"]
    per_username = settings["RATELIMIT_FAILURES_PER_USERNAME"]
    pair = parse_many(per_pair)
    problems = []
    if not any(item.amount < threshold for item in pair):
        problems.append(
            f"RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME {per_pair!r} must include a limit of "
            f"fewer failures than SECURITY_LOCKOUT_THRESHOLD ({threshold}), e.g. "
            f"'{threshold - 1} per 30 minutes': one address's failures stop counting toward "
            "the lockout there, and it would go on guessing")
    for item in parse_many(per_username):
        one_address = min(p.amount * math.ceil(item.get_expiry() / p.get_expiry()) for p in pair)
        if item.amount < threshold:
            problems.append(
                f"RATELIMIT_FAILURES_PER_USERNAME {per_username!r} allows fewer failures than "
                f"SECURITY_LOCKOUT_THRESHOLD ({threshold}): a guessed account would be "
                "throttled instead of locked, without the lockout's urgent audit event")
        elif one_address >= item.amount:
            problems.append(
                f"RATELIMIT_FAILURES_PER_USERNAME {per_username!r} allows {item.amount} "
                f"failures, which one client address may make by itself ({one_address} under "
                "RATELIMIT_FAILURES_PER_ADDRESS_AND_USERNAME): it could shut a username out "
                "from every address")
    return problems


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
