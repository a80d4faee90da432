"""Waking ERP delivery when an event commits, instead of leaving it to the next poll.

A wake-up carries nothing: it only tells the scheduler (`qms jobs`) "look at the outbox
now". The delivery pass it starts is the same pass the poll runs, under the same lock and
with the same order per channel, so a wake-up can neither reorder nor lose anything; a
wake-up that is lost costs latency only, because the interval poll stays as the safety net.

- **PostgreSQL.** ``write_event`` issues ``NOTIFY qms_erp_outbox`` in the deciding
  transaction. PostgreSQL hands a notification to listeners only when that transaction
  commits, never on rollback, and folds the identical ones of one transaction into one. The
  scheduler LISTENs on a connection of its own, from any host.
- **SQLite.** No NOTIFY: ``write_event`` marks the session, and after the commit one
  datagram goes to a UNIX socket that the scheduler binds in the instance folder. Sending
  never blocks and never fails the request: a scheduler that is not running, a full socket
  queue or any other error is ignored.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from apscheduler.events import (EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_SHUTDOWN,
                                EVENT_SCHEDULER_STARTED, JobEvent, SchedulerEvent)
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import text
from sqlalchemy.orm import Session, SessionTransaction

from qms.db import Database

log = logging.getLogger("qms.erp")

JOB_ID = "erp-delivery"
NOTIFY_CHANNEL = "qms_erp_outbox"
SOCKET_NAME = "erp-delivery.wake"  # in the instance folder, beside erp-delivery.lock
# whoever shares the instance folder's group (a web server under another account) may wake
# the scheduler; a wake-up only makes it look at the outbox sooner
SOCKET_MODE = 0o660
_PENDING = "qms_erp_wake_pending"  # session.info: this transaction wrote an outbox row
STOP_CHECK_SECONDS = 0.5  # how often a listener thread looks whether it should stop
RECONNECT_SECONDS = 5.0


def announce(session: Session) -> None:
    """Ask for a wake-up of the delivery once ``session``'s transaction commits (nothing if
    it rolls back). Called by write_event; flushes nothing, never commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    else:
        session.info[_PENDING] = True


def socket_path(instance: Path) -> Path:
    return instance / SOCKET_NAME


def wake_after_commit(db: Database, instance: Path) -> None:
    """On SQLite, every commit of a ``db`` session that announced an event sends one
    datagram to the scheduler of ``instance``. (PostgreSQL needs nothing here: the NOTIFY
    is part of the transaction.)"""
    if db.engine.dialect.name != "sqlite":
        return
    address = str(socket_path(instance))

    def after_commit(session: Session) -> None:
        # a savepoint's release is no commit; the flag waits for the outer one
        if not session.in_nested_transaction() and session.info.pop(_PENDING, False):
            send_wake(address)

    def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # rolled back or closed: nothing to announce
            session.info.pop(_PENDING, None)

    db.listen("after_commit", after_commit)
    db.listen("after_transaction_end", after_transaction_end)


def send_wake(address: str) -> None:
    """One datagram to ``address``, without waiting: a scheduler that is not listening, a
    queue that is full (the scheduler is awake anyway) or any other error is ignored, and
    the poll delivers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            sender.sendto(b"\x01", address)
    except OSError as error:
        log.debug("ERP wake-up not sent (%s); the poll delivers", error)


class Wakeups:
    """Turns wake-ups into runs of the delivery job without losing or piling them up.

    ``schedule_now`` asks the scheduler to run the job at once (APScheduler: ``modify_job``
    with ``next_run_time`` now; its ``max_instances=1`` keeps it to one run at a time). A
    wake-up while the job runs asks that run for one more pass instead, so an event
    committed after the run read the outbox is not left for the poll; a burst of wake-ups
    during a pass makes one more pass, not one each."""

    def __init__(self, schedule_now: Callable[[], None]):
        self._schedule_now = schedule_now
        self._lock = threading.Lock()
        self._running = False  # a run is between its start and its last look at _pending
        self._scheduled = False  # a run was asked for and has not started yet
        self._pending = False  # a wake-up that no pass has started after yet

    def wake(self) -> None:
        with self._lock:
            self._pending = True
            if self._running or self._scheduled:
                return  # that run sees _pending
            self._scheduled = True
        try:
            self._schedule_now()
        except Exception:  # noqa: BLE001 (a scheduler shutting down: the poll is the net)
            with self._lock:
                self._scheduled = False
            log.exception("ERP wake-up: could not schedule a delivery pass")

    def skipped(self) -> None:
        """The scheduler skipped the run asked for: the last run had returned but was still
        counted as running in its books (max_instances). Ask again while a wake-up waits, or
        every wake-up would be ignored until the poll."""
        with self._lock:
            self._scheduled = False
            again = self._pending and not self._running
        if again:
            self.wake()

    def run(self, deliver_pass: Callable[[], None]) -> None:
        """The job: a pass, and another while wake-ups came during the last one."""
        with self._lock:
            # every wake-up so far is served by the pass that starts now (a scheduled run
            # that the scheduler then skips, this one being under way, is not missed)
            self._running, self._scheduled, self._pending = True, False, False
        try:
            while True:
                deliver_pass()
                with self._lock:
                    if not self._pending:
                        self._running = False  # in the same lock: no wake-up falls between
                        return
                    self._pending = False
        except BaseException:
            with self._lock:
                self._running = False
            raise


class Listener(ABC):
    """A daemon thread that calls ``on_wake`` for each wake-up (several that arrive
    together: once), and once when it starts listening, for what committed while nobody
    listened. ``ready`` is set once it listens; ``stop()`` ends it."""

    def __init__(self, on_wake: Callable[[], None]):
        self.on_wake = on_wake
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="erp-wake", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join()

    @abstractmethod
    def _run(self) -> None:
        """The thread: wait for wake-ups until stopped, calling ``on_wake`` for each."""


class SocketListener(Listener):
    """SQLite: datagrams on the instance folder's socket."""

    def __init__(self, path: Path, on_wake: Callable[[], None]):
        super().__init__(on_wake)
        self.path = path

    def _run(self) -> None:
        try:
            receiver = self._bind()
        except OSError as error:  # e.g. a path over the 107 bytes a UNIX socket allows
            log.warning("ERP wake-up: cannot listen on %s (%s); delivery follows the poll "
                        "only", self.path, error)
            return
        with receiver:
            log.info("ERP delivery: woken by datagrams on %s", self.path)
            self.ready.set()
            self.on_wake()  # what committed while nobody listened
            try:
                while not self._stop.is_set():
                    if self._drain(receiver):
                        self.on_wake()
            finally:
                self._unlink_if_mine(receiver)

    def _bind(self) -> socket.socket:
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a socket file left by a scheduler that was killed refuses every bind
            self.path.unlink(missing_ok=True)
            receiver.bind(str(self.path))
            os.chmod(self.path, SOCKET_MODE)
            self._inode = self.path.stat().st_ino
        except OSError:
            receiver.close()
            raise
        receiver.settimeout(STOP_CHECK_SECONDS)
        return receiver

    @staticmethod
    def _drain(receiver: socket.socket) -> bool:
        """Wait for a datagram (up to the stop check), then take every queued one."""
        try:
            receiver.recv(16)
        except TimeoutError:
            return False
        receiver.setblocking(False)
        try:
            while True:
                receiver.recv(16)
        except BlockingIOError:
            pass
        finally:
            receiver.settimeout(STOP_CHECK_SECONDS)
        return True

    def _unlink_if_mine(self, receiver: socket.socket) -> None:
        try:  # a scheduler started after this one has bound a new socket there: keep it
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        except OSError:
            pass


class NotifyListener(Listener):
    """PostgreSQL: LISTEN on a connection of its own (not from the pool), reconnecting
    after a failure; a wake-up on every (re)connection covers what committed meanwhile."""

    def __init__(self, db: Database, on_wake: Callable[[], None]):
        super().__init__(on_wake)
        self.db = db

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as error:  # noqa: BLE001 (a lost connection: the poll goes on)
                log.warning("ERP wake-up: PostgreSQL listener lost (%s); reconnecting in "
                            "%g s, the poll delivers meanwhile", error, RECONNECT_SECONDS)
                self._stop.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        engine = self.db.engine
        # psycopg with the engine's own connection arguments; LISTEN needs autocommit
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        with engine.dialect.loaded_dbapi.connect(*args, **kwargs, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            if not self.ready.is_set():
                log.info("ERP delivery: woken by PostgreSQL NOTIFY %s", NOTIFY_CHANNEL)
            self.ready.set()
            self.on_wake()
            while not self._stop.is_set():
                # back at the first notification (with any that came in the same packet)
                if list(conn.notifies(timeout=STOP_CHECK_SECONDS, stop_after=1)):
                    self.on_wake()


def listener(db: Database, instance: Path, on_wake: Callable[[], None]) -> Listener:
    """The listener for ``db``'s dialect (not started)."""
    if db.engine.dialect.name == "postgresql":
        return NotifyListener(db, on_wake)
    return SocketListener(socket_path(instance), on_wake)


def schedule_delivery(scheduler: BaseScheduler, *, db: Database, instance: Path,
                      deliver_pass: Callable[[], None], poll_seconds: float,
                      job_id: str = JOB_ID) -> Listener:
    """Add the delivery job to ``scheduler``: ``deliver_pass`` every ``poll_seconds`` (the
    safety net) and whenever a commit wakes it. The wake-up listener starts and stops with
    the scheduler; it is returned for those who wait for it to be ready."""
    def schedule_now() -> None:
        scheduler.modify_job(job_id, next_run_time=datetime.now(timezone.utc))

    wakeups = Wakeups(schedule_now)
    # a run that starts late still runs (no misfire grace): it may carry a wake-up
    scheduler.add_job(wakeups.run, "interval", seconds=poll_seconds, args=[deliver_pass],
                      id=job_id, max_instances=1, coalesce=True, misfire_grace_time=None)
    wake_listener = listener(db, instance, wakeups.wake)

    def follow_scheduler(scheduler_event: SchedulerEvent) -> None:
        if scheduler_event.code == EVENT_SCHEDULER_STARTED:
            wake_listener.start()
        else:
            wake_listener.stop()
    scheduler.add_listener(follow_scheduler, EVENT_SCHEDULER_STARTED | EVENT_SCHEDULER_SHUTDOWN)

    def follow_skips(job_event: JobEvent) -> None:
        if job_event.job_id == job_id:
            wakeups.skipped()
    scheduler.add_listener(follow_skips, EVENT_JOB_MAX_INSTANCES)
    return wake_listener
