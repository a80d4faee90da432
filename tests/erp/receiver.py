"""A real HTTP webhook receiver for tests: a threaded http.server on 127.0.0.1 that verifies
Standard Webhooks signatures with its own code (never qms.erp.webhook's, so a shared mistake
cannot pass) and can be switched between behaviours:

- ``accept``: verify, record and answer 204; a redelivered id is answered 204 too and
  recorded with ``duplicate=True`` (``unique_ids()`` deduplicates);
- ``error``: answer 500 with ``error_body``, record nothing;
- ``hang``: read the request and never answer (until the mode changes or ``close()``);
- ``down``: nothing listens on the port; any other mode listens on the same port again.

    receiver = Receiver()            # its own fresh secret in receiver.secret
    post(receiver.url, receiver.secret, ...)
    receiver.received                # [(event_id, payload), ...] in arrival order
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("accept", "error", "hang", "down")
TOLERANCE_SECONDS = 5 * 60
TIMESTAMP = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True)
class Delivery:
    """One verified request, as it arrived (header names in lower case)."""
    event_id: str
    timestamp: int
    headers: dict[str, str]
    body: bytes
    payload: dict
    duplicate: bool


@dataclass(frozen=True)
class Rejection:
    headers: dict[str, str]
    body: bytes
    status: int
    reason: str


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


class Receiver:
    def __init__(self, secrets: Sequence[str] = (), *, tolerance: int = TOLERANCE_SECONDS,
                 clock: Callable[[], float] = time.time, hang_limit: float = 30.0):
        self.secrets = list(secrets) or ["whsec_" + base64.b64encode(os.urandom(32)).decode()]
        self._keys()  # a malformed secret fails here, not as a refused request later
        self.tolerance = tolerance
        self.clock = clock
        self.hang_limit = hang_limit
        self.error_body = "receiver error (simulated)"
        self.accept_delay = 0.0  # seconds between recording a delivery and answering it
        self.deliveries: list[Delivery] = []
        self.rejections: list[Rejection] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._mode = "accept"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._listen(0)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/erp/events"

    @property
    def secret(self) -> str:
        return self.secrets[0]

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode is one of {MODES}, not {mode!r}")
        with self._lock:
            previous, self._mode = self._mode, mode
            self._release_hung()
            if mode == "down" and previous != "down":
                self._stop()
            elif mode != "down" and previous == "down":
                self._listen(self.port)

    @property
    def received(self) -> list[tuple[str, dict]]:
        with self._lock:
            return [(d.event_id, d.payload) for d in self.deliveries]

    def unique_ids(self) -> list[str]:
        """Ids delivered, each once, in order of first arrival."""
        return list(dict.fromkeys(event_id for event_id, _ in self.received))

    def close(self) -> None:
        with self._lock:
            self._mode = "down"
            self._release_hung()
            self._stop()

    def verify(self, headers: Mapping[str, str], body: bytes) -> tuple[str, int]:
        """(id, timestamp) of a request signed with one of ``secrets`` within the tolerance;
        Refused otherwise. Standard Webhooks verification, written independently."""
        get = {name.lower(): value for name, value in headers.items()}.get
        event_id, stamp = get("webhook-id"), get("webhook-timestamp")
        header = get("webhook-signature")
        if not (event_id and stamp and header):
            raise Refused(400, "missing webhook-id, webhook-timestamp or webhook-signature")
        if not TIMESTAMP.fullmatch(stamp):
            raise Refused(400, f"webhook-timestamp {stamp!r} is not unix seconds")
        if abs(self.clock() - int(stamp)) > self.tolerance:
            raise Refused(401, "webhook-timestamp outside the tolerance")
        signed = b".".join([event_id.encode(), stamp.encode(), body])
        expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
                    for key in self._keys()]
        for candidate in header.split(" "):
            version, _, value = candidate.partition(",")
            if version == "v1" and any(hmac.compare_digest(value.encode(), good)
                                       for good in expected):
                return event_id, int(stamp)
        raise Refused(401, "no matching v1 signature")

    def _keys(self) -> list[bytes]:
        return [base64.b64decode(secret.removeprefix("whsec_"), validate=True)
                for secret in self.secrets]

    def _accept(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        try:
            event_id, stamp = self.verify(headers, body)
            payload = _payload(headers, body)
        except Refused as refused:
            return self._reject(headers, body, refused)
        with self._lock:
            duplicate = any(d.event_id == event_id for d in self.deliveries)
            self.deliveries.append(Delivery(event_id, stamp, headers, body, payload, duplicate))
        time.sleep(self.accept_delay)
        return 204, ""

    def _reject(self, headers: dict[str, str], body: bytes, refused: Refused) -> tuple[int, str]:
        with self._lock:
            self.rejections.append(Rejection(headers, body, refused.status, str(refused)))
        return refused.status, str(refused)

    def _hang(self) -> None:
        with self._lock:
            wake = self._wake
        wake.wait(self.hang_limit)

    def _release_hung(self) -> None:
        self._wake.set()
        self._wake = threading.Event()

    def _listen(self, port: int) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None


def _payload(headers: dict[str, str], body: bytes) -> dict:
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Refused(415, "Content-Type is not application/json")
    try:
        payload = json.loads(body)
    except ValueError:
        raise Refused(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    return payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (timeout) is expected here, not a test failure


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode = receiver.mode
        if mode == "hang":
            receiver._hang()
            self.close_connection = True
            return
        if mode == "error":
            self._answer(500, receiver.error_body)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._answer(*receiver._accept(headers, body))

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        if status != 204:  # a 204 carries neither body nor length
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass  # keep test output quiet
