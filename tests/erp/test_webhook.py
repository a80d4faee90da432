"""The webhook channel against a real HTTP receiver that checks Standard Webhooks
signatures with its own code (tests/erp/receiver.py)."""
from __future__ import annotations

import base64
import dataclasses
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qms.erp.webhook import Outcome, new_secret, next_attempt_delay, post_event, sign
from tests.erp.receiver import Receiver

# the published Standard Webhooks test vector (reference libraries' tests)
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID, VECTOR_TIME = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
TIMEOUT = 2.0


def erp_event() -> tuple[str, bytes]:
    """An event id and its body, encoded as delivered (docs: ERP event, version 1)."""
    event_id = str(uuid.uuid4())
    payload = {"event_id": event_id, "type": "batch.released", "sequence": 42,
               "occurred_at": "2026-12-07T14:00:00.123456Z", "lot": "B202612-L1-0001",
               "material": "FG-TAB", "material_name": "Tabletten 10 mg – Größe Ä",
               "status": "released", "disposition": "Unrestricted", "usage_decision": "A",
               "quantity": "100.5", "unit": "kg", "reason": None}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return event_id, body.encode("utf-8")


def post_raw(url: str, headers: dict[str, str], body: bytes) -> int:
    """A hand-made request, for what post_event would never send."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


# signing

def test_signature_matches_the_published_test_vector():
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIME, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_receiver_verifies_the_published_test_vector_on_its_own():
    receiver = Receiver([VECTOR_SECRET], clock=lambda: VECTOR_TIME + 299)
    try:
        headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIME),
                   "webhook-signature": VECTOR_SIGNATURE}
        assert receiver.verify(headers, VECTOR_BODY) == (VECTOR_ID, VECTOR_TIME)
    finally:
        receiver.close()


def test_new_secrets_are_32_random_bytes_after_whsec():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert len(base64.b64decode(first[6:], validate=True)) == 32
    assert first != second


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!",
                                    "whsec_", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_a_malformed_secret_is_refused(secret):
    with pytest.raises(ValueError):
        sign(secret, VECTOR_ID, VECTOR_TIME, VECTOR_BODY)


@pytest.mark.parametrize("event_id, timestamp", [("", 1), ("has space", 1), ("new\nline", 1),
                                                 ("id", -1), ("id", 1.5), ("id", True)])
def test_an_id_or_timestamp_unfit_for_a_header_is_refused(event_id, timestamp):
    with pytest.raises(ValueError):
        sign(new_secret(), event_id, timestamp, b"{}")


# one POST

def test_a_signed_post_is_accepted_and_verified(receiver):
    event_id, body = erp_event()
    before = time.time()
    outcome = post_event(receiver.url, receiver.secret, event_id, body, timeout=TIMEOUT)
    assert outcome == Outcome(True, 204, None, outcome.elapsed)
    assert 0 <= outcome.elapsed < TIMEOUT
    [delivery] = receiver.deliveries
    assert delivery.body == body
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["webhook-id"] == event_id
    assert int(before) <= delivery.timestamp <= time.time()
    assert delivery.headers["webhook-signature"] == sign(receiver.secret, event_id,
                                                         delivery.timestamp, body)
    assert receiver.received == [(event_id, json.loads(body))]
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.delivered = False


def test_a_redelivered_id_is_accepted_and_counted_once(receiver):
    event_id, body = erp_event()
    other_id, other_body = erp_event()
    for eid, data in [(event_id, body), (other_id, other_body), (event_id, body)]:
        assert post_event(receiver.url, receiver.secret, eid, data, timeout=TIMEOUT).delivered
    assert [eid for eid, _ in receiver.received] == [event_id, other_id, event_id]
    assert receiver.unique_ids() == [event_id, other_id]
    assert [d.duplicate for d in receiver.deliveries] == [False, False, True]


def test_a_tampered_body_or_timestamp_fails_the_receivers_check(receiver):
    event_id, body = erp_event()
    stamp = int(time.time())
    signature = sign(receiver.secret, event_id, stamp, body)
    honest = {"webhook-id": event_id, "webhook-timestamp": str(stamp),
              "webhook-signature": signature}
    tampered_body = body.replace(b'"quantity":"100.5"', b'"quantity":"900.5"')
    assert tampered_body != body
    assert post_raw(receiver.url, honest, tampered_body) == 401
    assert post_raw(receiver.url, {**honest, "webhook-timestamp": str(stamp + 1)}, body) == 401
    assert post_raw(receiver.url, {**honest, "webhook-id": str(uuid.uuid4())}, body) == 401
    assert receiver.received == []
    assert [r.reason for r in receiver.rejections] == ["no matching v1 signature"] * 3
    assert post_raw(receiver.url, honest, body) == 204  # the untouched request passes


def test_a_wrong_secret_is_refused_with_the_receivers_answer(receiver):
    event_id, body = erp_event()
    outcome = post_event(receiver.url, new_secret(), event_id, body, timeout=TIMEOUT)
    assert (outcome.delivered, outcome.status) == (False, 401)
    assert outcome.error == "HTTP 401 Unauthorized: no matching v1 signature"
    assert receiver.received == []


@pytest.mark.parametrize("skew, accepted", [(-290, True), (290, True),
                                            (-310, False), (310, False)])
def test_the_receiver_allows_five_minutes_of_clock_skew(receiver, skew, accepted):
    event_id, body = erp_event()
    outcome = post_event(receiver.url, receiver.secret, event_id, body, timeout=TIMEOUT,
                         now=lambda: time.time() + skew)
    assert outcome.delivered is accepted
    assert receiver.unique_ids() == ([event_id] if accepted else [])


def test_key_rotation_one_matching_signature_is_enough(receiver):
    old, event_id, body = new_secret(), *erp_event()
    outcome = post_event(receiver.url, [old, receiver.secret], event_id, body, timeout=TIMEOUT)
    assert outcome.delivered
    [delivery] = receiver.deliveries
    signatures = delivery.headers["webhook-signature"].split(" ")
    assert signatures == [sign(key, event_id, delivery.timestamp, body)
                          for key in (old, receiver.secret)]

    rotating = Receiver([old, new_secret()])  # the receiver side rotating instead
    try:
        assert post_event(rotating.url, old, event_id, body, timeout=TIMEOUT).delivered
        assert rotating.unique_ids() == [event_id]
    finally:
        rotating.close()


# trouble: never an exception, always a reason

def test_a_server_error_is_not_delivered_and_says_what_the_server_said(receiver):
    receiver.mode = "error"
    receiver.error_body = "database is locked; " * 30
    event_id, body = erp_event()
    outcome = post_event(receiver.url, receiver.secret, event_id, body, timeout=TIMEOUT)
    assert (outcome.delivered, outcome.status) == (False, 500)
    assert outcome.error == "HTTP 500 Internal Server Error: " + receiver.error_body[:200].strip()
    assert receiver.received == []


def test_a_hanging_receiver_times_out(receiver):
    receiver.mode = "hang"
    event_id, body = erp_event()
    outcome = post_event(receiver.url, receiver.secret, event_id, body, timeout=0.3)
    assert (outcome.delivered, outcome.status) == (False, None)
    assert outcome.error == "no response within the timeout of 0.3 s"
    assert 0.3 <= outcome.elapsed < 2.0
    receiver.mode = "accept"
    assert post_event(receiver.url, receiver.secret, event_id, body, timeout=TIMEOUT).delivered
    assert receiver.received == [(event_id, json.loads(body))]


def test_a_receiver_that_is_down_refuses_then_takes_the_event_on_the_same_url(receiver):
    url = receiver.url
    receiver.mode = "down"
    event_id, body = erp_event()
    outcome = post_event(url, receiver.secret, event_id, body, timeout=TIMEOUT)
    assert outcome == Outcome(False, None, "connection refused", outcome.elapsed)
    receiver.mode = "accept"
    assert receiver.url == url
    assert post_event(url, receiver.secret, event_id, body, timeout=TIMEOUT).delivered
    assert receiver.unique_ids() == [event_id]


def test_a_redirect_is_not_followed():
    hits = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        outcome = post_event(url, new_secret(), "evt-1", b"{}", timeout=TIMEOUT)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (outcome.delivered, outcome.status) == (False, 307)
    assert outcome.error == "HTTP 307 Temporary Redirect: redirect to '/elsewhere' not followed"
    assert hits == ["/hook"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:,{}",
                                 "gopher://127.0.0.1/", "javascript:alert(1)", "/erp/events",
                                 "http://", "https:///erp", "http://127.0.0.1:99999/",
                                 "http://127.0.0.1:port/", "http://127.0.0.1/a b",
                                 "http://127.0.0.1/\r\nX-Injected: 1", "http://bücher.example/"])
def test_only_http_and_https_urls_are_accepted(url):
    with pytest.raises(ValueError):
        post_event(url, new_secret(), "evt-1", b"{}", timeout=TIMEOUT)


def test_timeout_must_be_positive(receiver):
    for timeout in (0, -1, float("inf"), None):
        with pytest.raises(ValueError):
            post_event(receiver.url, receiver.secret, "evt-1", b"{}", timeout=timeout)
    assert receiver.rejections == [] and receiver.deliveries == []


# backoff

backoff = dict(attempt=st.integers(1, 2000), base=st.floats(0.001, 600),
               factor=st.floats(1, 10_000), seed=st.integers(0, 2**32))


@given(**backoff)
def test_backoff_stays_between_zero_and_the_doubling_ceiling(attempt, base, factor, seed):
    cap = base * factor
    delay = next_attempt_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2.0 ** min(attempt - 1, 1000))


@given(**backoff)
def test_backoff_grows_with_each_attempt_until_the_cap(attempt, base, factor, seed):
    cap = base * factor

    def delay(n):  # the same random draw for both attempts: only the ceiling differs
        return next_attempt_delay(n, base=base, cap=cap, rng=random.Random(seed))

    assert delay(attempt + 1) >= delay(attempt)
    if attempt < 64 and base * 2.0 ** attempt <= cap:
        assert delay(attempt + 1) == pytest.approx(2 * delay(attempt))


@pytest.mark.parametrize("attempt, ceiling", [(1, 1.0), (2, 2.0), (5, 16.0), (7, 60.0),
                                              (50, 60.0)])
def test_backoff_jitter_spreads_over_the_whole_range(attempt, ceiling):
    rng = random.Random(7)
    delays = [next_attempt_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(500)]
    assert max(delays) <= ceiling
    assert max(delays) > 0.95 * ceiling and min(delays) < 0.05 * ceiling


@pytest.mark.parametrize("attempt, base, cap", [(0, 1, 60), (-1, 1, 60), (1, 0, 60),
                                                (1, 2, 1), (1, 1, float("inf"))])
def test_backoff_refuses_nonsense(attempt, base, cap):
    with pytest.raises(ValueError):
        next_attempt_delay(attempt, base=base, cap=cap, rng=random.Random(1))
