"""The webhook channel: one signed HTTP POST per attempt, per the Standard Webhooks
specification (https://www.standardwebhooks.com), and the backoff between attempts.

Standard library only. Nothing here reads the outbox, retries or records anything: the
delivery job decides what an Outcome means for the event.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import http.client
import math
import random
import re
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SCHEMES = ("http", "https")
ERROR_BODY_CHARS = 200
USER_AGENT = "QMS-webhook/1"
# the id travels in a header and in the signed content: visible ASCII, no spaces
EVENT_ID = re.compile(r"[!-~]{1,255}")
# control characters, spaces and DEL never belong in a URL sent on the request line
URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
# beyond this many doublings every ceiling is the cap anyway; keeps the float finite
MAX_DOUBLINGS = 1000


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt. ``status`` is None when no HTTP response came back; ``error``
    is None exactly when the event was delivered (a 2xx answer)."""
    delivered: bool
    status: int | None
    error: str | None
    elapsed: float


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one secret: ``v1,`` and the base64 HMAC-SHA256,
    keyed with the secret's decoded bytes, of ``{event_id}.{timestamp}.{body}``."""
    content = f"{_checked_id(event_id)}.{_checked_timestamp(timestamp)}.".encode("ascii") + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def check_url(url: str) -> str:
    """``url`` itself when it is an absolute http(s) URL with a host; ValueError otherwise,
    so that file:, ftp:, data: and the like are never opened."""
    if isinstance(url, str) and "@" in urlsplit(url).netloc:
        # not echoed: the URL carries a password, which must reach neither logs nor the
        # audit trail (and urllib would not send it anyway)
        raise ValueError("a webhook URL must not carry a user name or password; the "
                         "signing secret authenticates QMS")
    if not isinstance(url, str) or not url.isascii() or URL_FORBIDDEN.search(url):
        raise ValueError(f"webhook URL {url!r} is not a plain ASCII URL")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} is not http:// or https:// with a host")
    parts.port  # raises ValueError for a port that is not a number in range
    return url


def post_event(url: str, secret: str | Sequence[str], event_id: str, body: bytes, *,
               timeout: float, now: Callable[[], float] = time.time) -> Outcome:
    """POST ``body`` (JSON) to ``url`` once, signed with ``secret``, or with each of several
    secrets while a key is being rotated. ``timeout`` bounds the connect and each read.
    Redirects are not followed. Network trouble and non-2xx answers come back as an
    undelivered Outcome, never as an exception; a bad URL, secret, id or timeout raises
    ValueError before anything is sent."""
    if not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    request = _request(url, secret, event_id, body, int(now()))
    started = time.monotonic()
    try:
        with _opener().open(request, timeout=timeout) as response:
            status = response.status
            error = None if 200 <= status < 300 else _refusal(response)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, _network_error(exc, timeout), time.monotonic() - started)
    return Outcome(error is None, status, error, time.monotonic() - started)


def next_attempt_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): uniformly random
    between 0 and min(cap, base * 2**(attempt - 1)) ("full jitter"), so that senders do not
    all come back at the same moment when a receiver recovers."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt!r}")
    if not (0 < base <= cap < math.inf):
        raise ValueError(f"backoff needs 0 < base <= cap, finite (base={base}, cap={cap})")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, MAX_DOUBLINGS))
    return rng.uniform(0.0, ceiling)


def _request(url: str, secret: str | Sequence[str], event_id: str, body: bytes,
             timestamp: int) -> urllib.request.Request:
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one webhook secret is needed")
    signatures = " ".join(sign(key, event_id, timestamp, body) for key in keys)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "webhook-id": event_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": signatures}
    return urllib.request.Request(check_url(url), data=bytes(body), headers=headers,
                                  method="POST")


def _opener() -> urllib.request.OpenerDirector:
    # only http(s) handlers, and none for redirects or errors: a 3xx or 5xx comes back as a
    # plain response, and nothing can lead the request to another scheme or address.
    # ProxyHandler honours http_proxy / https_proxy / no_proxy as the site sets them.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(context=_tls_context())):
        opener.add_handler(handler)
    return opener


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # certificate and host name verified


def _refusal(response: http.client.HTTPResponse) -> str:
    head = f"HTTP {response.status} {response.reason}".rstrip()
    if 300 <= response.status < 400:
        return f"{head}: redirect to {response.headers.get('Location')!r} not followed"
    try:
        # 4 bytes are enough for any UTF-8 character
        text = response.read(ERROR_BODY_CHARS * 4).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return f"{head} (body unreadable: {type(exc).__name__})"
    text = text[:ERROR_BODY_CHARS].strip()
    return f"{head}: {text}" if text else head


def _network_error(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if not isinstance(reason, BaseException):
        reason = exc
    if isinstance(reason, TimeoutError):
        return f"no response within the timeout of {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return f"{type(reason).__name__}: {reason}"


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error:
        raise ValueError("the webhook secret is not valid base64 after 'whsec_'") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _checked_id(event_id: str) -> str:
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        raise ValueError(f"event id {event_id!r} is not 1-255 visible ASCII characters")
    return event_id


def _checked_timestamp(timestamp: int) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be whole unix seconds, not {timestamp!r}")
    return timestamp
