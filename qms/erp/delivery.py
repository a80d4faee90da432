"""Delivering the outbox: file drop and webhooks, at least once, in order per lot.

A pass, per channel: queue a delivery row for every event the channel has not seen yet (rows
commit in ``seq`` order, so "above the last queued" misses none); take the undelivered rows
in ``seq`` order; skip every row of a lot that has an earlier undelivered row (waiting for
its retry, or parked), so a lot's events arrive in order; send the rest with no database
transaction open (a webhook may take seconds; on SQLite an open write transaction would stop
every other writer); then record every outcome, with its audit event, in one short
transaction. A process killed after sending and before that commit sends again on restart:
at least once, never lost. Receivers deduplicate on ``event_id`` (the ``webhook-id``).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.auditing import SYSTEM_ACTOR, record_event
from qms.db import Database, utcnow
from qms.erp import webhook
from qms.erp.b2mml import sync_material_lot
from qms.erp.models import DELIVERED, PARKED, PENDING, ErpDelivery, ErpEvent
from qms.errors import InvalidInput
from qms.records.service import required_reason

log = logging.getLogger("qms.erp")

FILE_CHANNEL = "file"
WEBHOOK_PREFIX = "webhook:"
CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,60}")
# undelivered rows looked at per channel and pass: a larger backlog is worked off in passes
PASS_SIZE = 500
FILE_MODE = 0o644  # dropped files: the QMS account writes, everyone on the host reads
RECORD_EVERY = 50
DOWN_AFTER_FAILURES = 3
ERROR_CHARS = 500


@dataclass(frozen=True)
class Pending:
    """One undelivered event on one channel."""
    seq: int
    event_id: str
    lot: str
    payload: str


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    error: str | None = None


@dataclass(frozen=True)
class Channel:
    """A destination: its name (``file``, ``webhook:<name>``) and how one event is sent."""
    name: str
    send: Callable[[Pending], Attempt]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    cap_seconds: float


@dataclass
class PassReport:
    """What one pass did, per channel: events delivered, failed (to retry), parked."""
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    parked: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # passes that broke off (logged)

    def count(self, bucket: dict[str, int], channel: str) -> None:
        bucket[channel] = bucket.get(channel, 0) + 1

    @property
    def total_delivered(self) -> int:
        return sum(self.delivered.values())

    def add(self, other: PassReport) -> None:
        for bucket in ("delivered", "failed", "parked", "errors"):
            mine = getattr(self, bucket)
            for channel, count in getattr(other, bucket).items():
                mine[channel] = mine.get(channel, 0) + count


# ---- channels ----------------------------------------------------------------------------

def file_drop(folder: Path) -> Channel:
    """One ``{seq:012d}-{event_id}.json`` and ``.xml`` (B2MML SyncMaterialLot) per event:
    sorting the names gives the event order. Each is written under a temporary name, synced
    and renamed, so a reader never sees half a file; the XML goes first, so that the JSON's
    appearance means both are there."""
    def send(event: Pending) -> Attempt:
        stem = f"{event.seq:012d}-{event.event_id}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(folder, f"{stem}.xml",
                              sync_material_lot(json.loads(event.payload)))
            _write_atomically(folder, f"{stem}.json", event.payload.encode("utf-8"))
        except OSError as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}")
        return Attempt(True)
    return Channel(FILE_CHANNEL, send)


def _write_atomically(folder: Path, name: str, content: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            # mkstemp makes the file private; the consumer (middleware, an SFTP or SMB
            # share) is usually another account
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def webhook_channel(name: str, url: str, secret: str | list[str], timeout: float) -> Channel:
    """POST of the event's JSON, signed per Standard Webhooks; 2xx = delivered."""
    webhook.check_url(url)

    def send(event: Pending) -> Attempt:
        outcome = webhook.post_event(url, secret, event.event_id,
                                     event.payload.encode("utf-8"), timeout=timeout)
        return Attempt(outcome.delivered, outcome.error)
    return Channel(f"{WEBHOOK_PREFIX}{name}", send)


def channels_from_settings(settings: Mapping[str, Any], instance: Path) -> list[Channel]:
    """The configured channels ([erp] in the settings); ValueError naming the bad entry."""
    channels = []
    folder = settings["ERP_FILE_DROP_FOLDER"]
    if folder:
        channels.append(file_drop(instance / folder))  # an absolute folder stays absolute
    names = set()
    for number, entry in enumerate(settings["ERP_WEBHOOKS"], start=1):
        if not isinstance(entry, Mapping) or set(entry) != {"name", "url", "secret"}:
            raise ValueError(f"erp.webhooks entry {number} needs exactly name, url and secret")
        name = entry["name"]
        if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name) or name in names:
            raise ValueError(f"erp.webhooks entry {number}: name {name!r} must be unique, "
                             "letters, digits, - and _")
        names.add(name)
        secrets = entry["secret"] if isinstance(entry["secret"], list) else [entry["secret"]]
        if not secrets:
            raise ValueError(f"erp.webhooks entry {number}: no secret")
        for secret in secrets:  # a malformed secret fails here, at start
            try:
                webhook.sign(secret, "check", 0, b"")
            except (ValueError, TypeError):
                raise ValueError(f"erp.webhooks entry {number}: a secret is whsec_ and "
                                 "base64 (`qms erp new-secret`)") from None
        channels.append(webhook_channel(name, entry["url"], secrets,
                                        settings["ERP_WEBHOOK_TIMEOUT_SECONDS"]))
    return channels


def policy_from_settings(settings: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(settings["ERP_MAX_ATTEMPTS"], settings["ERP_BACKOFF_BASE_SECONDS"],
                       settings["ERP_BACKOFF_CAP_SECONDS"])


# ---- one pass ----------------------------------------------------------------------------

def deliver_pass(db: Database, channels: Iterable[Channel], policy: RetryPolicy, *,
                 rng: random.Random | None = None,
                 now: Callable[[], datetime] = utcnow) -> PassReport:
    """Queue, send and record once for every channel."""
    rng = rng or random.Random()
    report = PassReport()
    for channel in channels:
        try:
            _channel_pass(db, channel, policy, rng, now, report)
        except Exception:  # noqa: BLE001 (the next channel still gets its pass)
            log.exception("ERP delivery pass on %s failed", channel.name)
            report.count(report.errors, channel.name)
    return report


def _channel_pass(db: Database, channel: Channel, policy: RetryPolicy, rng: random.Random,
                  now: Callable[[], datetime], report: PassReport) -> None:
    with db.unit_of_work() as session:
        queue_new_events(session, channel.name)
    with db.reading() as session:
        due = due_events(session, channel.name, now())
    for outcomes in _send(channel, due):
        with db.unit_of_work() as session:
            record_outcomes(session, channel.name, outcomes, policy, rng, now(), report)


def _send(channel: Channel, due: list[Pending]):
    """Send in order, yielding the outcomes every RECORD_EVERY attempts (each batch is
    recorded before the next is sent: a crash re-sends at most one batch). After a failure
    the lot's later events wait; after several failures in a row the receiver is taken to
    be down and the pass ends for this channel rather than wait out every timeout."""
    failed_lots: set[str] = set()
    outcomes: list[tuple[Pending, Attempt]] = []
    failures_in_a_row = 0
    for event in due:
        if event.lot in failed_lots:
            continue
        attempt = _attempt(channel, event)
        outcomes.append((event, attempt))
        if attempt.delivered:
            failures_in_a_row = 0
        else:
            failed_lots.add(event.lot)
            failures_in_a_row += 1
        if failures_in_a_row >= DOWN_AFTER_FAILURES:
            break
        if len(outcomes) >= RECORD_EVERY:
            yield outcomes
            outcomes = []
    if outcomes:
        yield outcomes


def _attempt(channel: Channel, event: Pending) -> Attempt:
    """One send; an exception from it (an event the B2MML mapping refuses, a bug) is a
    failed attempt like any other, retried and then parked, never a stop of delivery."""
    try:
        return channel.send(event)
    except Exception as exc:  # noqa: BLE001 (any failure of one send is that send's outcome)
        log.exception("ERP delivery of event %s on %s failed", event.event_id, channel.name)
        return Attempt(False, f"{type(exc).__name__}: {exc}")


def queue_new_events(session: Session, channel: str) -> int:
    """A pending row for every event above the channel's last queued one."""
    last = session.scalar(select(func.max(ErpDelivery.event_seq))
                          .where(ErpDelivery.channel == channel)) or 0
    result = session.execute(insert(ErpDelivery).from_select(
        ["channel", "event_seq", "state", "attempts"],
        select(literal(channel), ErpEvent.seq, literal(PENDING), literal(0))
        .where(ErpEvent.seq > last)))
    return result.rowcount or 0


def due_events(session: Session, channel: str, moment: datetime) -> list[Pending]:
    """The undelivered events to send now, in ``seq`` order, none of them behind an earlier
    undelivered event of its lot."""
    rows = session.execute(
        select(ErpDelivery.event_seq, ErpDelivery.next_attempt_at, ErpEvent.event_id,
               ErpEvent.lot, ErpEvent.payload)
        .join(ErpEvent, ErpEvent.seq == ErpDelivery.event_seq)
        .where(ErpDelivery.channel == channel, ErpDelivery.state == PENDING)
        .order_by(ErpDelivery.event_seq).limit(PASS_SIZE)).all()
    # parked events are not in the window (hundreds of them would hide every newer lot);
    # they only hold back the later events of their own lots
    waiting_lots: set[str] = set(session.scalars(
        select(ErpEvent.lot).join(ErpDelivery, ErpEvent.seq == ErpDelivery.event_seq)
        .where(ErpDelivery.channel == channel, ErpDelivery.state == PARKED).distinct()))
    due = []
    for row in rows:
        if row.next_attempt_at is not None and row.next_attempt_at > moment:
            waiting_lots.add(row.lot)  # later events of this lot wait for this retry
        elif row.lot not in waiting_lots:
            due.append(Pending(row.event_seq, row.event_id, row.lot, row.payload))
    return due


def record_outcomes(session: Session, channel: str, outcomes: list[tuple[Pending, Attempt]],
                    policy: RetryPolicy, rng: random.Random, moment: datetime,
                    report: PassReport) -> None:
    """Each outcome on its row, with one audit event per attempt."""
    # every row is locked (PostgreSQL), in seq order, before the first audit event takes the
    # head lock: a requeue locks its rows in the same order, so neither waits on the other
    # while holding what the other needs
    rows = {row.event_seq: row for row in session.scalars(
        select(ErpDelivery).where(ErpDelivery.channel == channel, ErpDelivery.event_seq.in_(
            [event.seq for event, _ in outcomes]))
        .order_by(ErpDelivery.event_seq).with_for_update())}
    for event, attempt in outcomes:
        row = rows.get(event.seq)
        if row is None or row.state == DELIVERED:
            continue  # recorded meanwhile by another pass: keep the first outcome
        row.attempts += 1
        data = {"channel": channel, "event_id": event.event_id, "sequence": event.seq,
                "lot": event.lot, "attempt": row.attempts}
        if attempt.delivered:
            row.state, row.delivered_at, row.last_error = DELIVERED, moment, None
            row.next_attempt_at = None
            action = AuditAction.Erp.MESSAGE_DELIVERED
            report.count(report.delivered, channel)
        else:
            row.last_error = (attempt.error or "not delivered")[:ERROR_CHARS]
            data["error"] = row.last_error
            if row.attempts >= policy.max_attempts:
                row.state, row.next_attempt_at = PARKED, None
                action = AuditAction.Erp.MESSAGE_PARKED
                report.count(report.parked, channel)
            else:
                delay = webhook.next_attempt_delay(row.attempts, base=policy.base_seconds,
                                                   cap=policy.cap_seconds, rng=rng)
                row.next_attempt_at = moment + timedelta(seconds=delay)
                data["next_attempt_at"] = row.next_attempt_at.isoformat()
                action = AuditAction.Erp.MESSAGE_FAILED
                report.count(report.failed, channel)
        record_event(session, actor=SYSTEM_ACTOR, action=action, data=data,
                     entity=("lot", event.lot))


def deliver_until_idle(db: Database, channels: list[Channel], policy: RetryPolicy, *,
                       rng: random.Random | None = None,
                       now: Callable[[], datetime] = utcnow) -> PassReport:
    """Passes until one delivers nothing (the backlog of events that are due is worked
    off; events waiting for a retry stay for later)."""
    total = PassReport()
    while True:
        report = deliver_pass(db, channels, policy, rng=rng, now=now)
        total.add(report)
        if not report.total_delivered:
            return total


# ---- operations ----------------------------------------------------------------------------

class DeliveryBusy(RuntimeError):
    """Another process on this host is delivering."""


@contextmanager
def delivery_lock(instance: Path) -> Iterator[None]:
    """One delivering process per instance (the scheduler, or `qms erp deliver`): two would
    send the same events twice at once. An exclusive lock on a file in the instance folder,
    released by the operating system if the process dies."""
    instance.mkdir(parents=True, exist_ok=True)
    with open(instance / "erp-delivery.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeliveryBusy("another process is delivering ERP events (qms jobs?)") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def requeue(session: Session, channel: str, event_ids: list[str] | None, reason: str, *,
            actor: str = SYSTEM_ACTOR) -> int:
    """Parked (or, named by id, any undelivered) events of ``channel`` back to pending with
    a fresh attempt count; audited with the reason, as ``actor`` (an administrator, or
    ``system`` for the command line). Returns how many."""
    query = (select(ErpDelivery, ErpEvent.event_id, ErpEvent.lot)
             .join(ErpEvent, ErpEvent.seq == ErpDelivery.event_seq)
             .where(ErpDelivery.channel == channel, ErpDelivery.state != DELIVERED))
    if event_ids is None:
        query = query.where(ErpDelivery.state == PARKED)
    else:
        known = set(session.scalars(select(ErpEvent.event_id)
                                    .where(ErpEvent.event_id.in_(event_ids))))
        unknown = [event_id for event_id in event_ids if event_id not in known]
        if unknown:
            raise InvalidInput(f"no such event: {', '.join(unknown)}", field="event_ids")
        query = query.where(ErpEvent.event_id.in_(event_ids))
    reason = required_reason(reason)
    # locked in seq order before the first audit event, as record_outcomes does
    rows = session.execute(query.order_by(ErpDelivery.event_seq)
                           .with_for_update(of=ErpDelivery)).all()
    for row, event_id, lot in rows:
        row.state, row.attempts, row.next_attempt_at = PENDING, 0, None
        record_event(session, actor=actor, action=AuditAction.Erp.MESSAGE_REQUEUED,
                     data={"channel": channel, "event_id": event_id,
                           "sequence": row.event_seq}, entity=("lot", lot), reason=reason)
    return len(rows)


def delivery_status(session: Session) -> dict[str, dict[str, int]]:
    """Per channel, how many events are pending, delivered and parked."""
    counts: dict[str, dict[str, int]] = {}
    for channel, state, count in session.execute(
            select(ErpDelivery.channel, ErpDelivery.state, func.count())
            .group_by(ErpDelivery.channel, ErpDelivery.state)):
        counts.setdefault(channel, {PENDING: 0, DELIVERED: 0, PARKED: 0})[state] = count
    return counts


def parked_events(session: Session, channel: str | None = None, limit: int = 100) -> list[dict]:
    """The parked deliveries, oldest first, with the last error: what an admin acts on."""
    query = (select(ErpDelivery.channel, ErpDelivery.event_seq, ErpDelivery.attempts,
                    ErpDelivery.last_error, ErpEvent.event_id, ErpEvent.lot, ErpEvent.type)
             .join(ErpEvent, ErpEvent.seq == ErpDelivery.event_seq)
             .where(ErpDelivery.state == PARKED).order_by(ErpDelivery.event_seq).limit(limit))
    if channel is not None:
        query = query.where(ErpDelivery.channel == channel)
    return [{"channel": row.channel, "sequence": row.event_seq, "event_id": row.event_id,
             "type": row.type, "lot": row.lot, "attempts": row.attempts,
             "last_error": row.last_error} for row in session.execute(query)]
