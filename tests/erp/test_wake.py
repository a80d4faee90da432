"""Delivery woken by the commit (qms.erp.wake): a real `qms jobs` process whose poll is an
hour away delivers a committed decision, a rolled-back one wakes and delivers nothing, and
a wake-up can neither block a commit nor be lost while a pass runs. No assertion here is
about durations: each wait has a generous deadline and the assertions are about order and
outcome."""
from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from qms.erp import wake
from qms.erp.models import ErpEvent
from qms.erp.outbox import write_event
from qms.materials.models import Lot

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60
AN_HOUR = 3600


class Rollback(Exception):
    pass


def _write_one(app, lot_number: str, *, commit: bool) -> str:
    """One outbox event about the lot, in a unit of work that commits or rolls back."""
    db = app.extensions["qms"].db
    try:
        with db.unit_of_work() as session:
            lot = session.scalar(select(Lot).where(Lot.number == lot_number))
            event_id = write_event(session, "lot.status_changed", lot, actor="system").event_id
            if not commit:
                raise Rollback
    except Rollback:
        pass
    return event_id


def _event_ids(app) -> list[str]:
    with app.extensions["qms"].db.engine.connect() as connection:
        return list(connection.scalars(select(ErpEvent.event_id).order_by(ErpEvent.seq)))


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


class Scheduler:
    """`qms jobs` as a real process, its log read by a thread."""

    def __init__(self, app_config: dict, config_file: Path):
        env = {"PATH": os.environ["PATH"], "QMS_CONFIG": str(config_file),
               "QMS_INSTANCE_PATH": app_config["INSTANCE_PATH"],
               "QMS_DATABASE_URL": app_config["DATABASE_URL"], "QMS_APP_SECRET_KEY": "k" * 40}
        self.process = subprocess.Popen([sys.executable, "-m", "qms", "jobs"], env=env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_until_listening(self) -> None:
        _wait_for(lambda: any("ERP delivery: woken by" in line for line in self.lines)
                  or self.process.poll() is not None, "the scheduler to listen")
        assert self.process.poll() is None, "".join(self.lines)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=DEADLINE_SECONDS)


@pytest.fixture
def scheduler(app, app_config, receiver, tmp_path):
    """`qms jobs` delivering to the receiver, with its poll an hour away: whatever arrives
    was woken by a commit (or by the start-up pass, which the tests let go by first)."""
    config = tmp_path / "site.toml"
    config.write_text(f'[erp]\npoll_seconds = {AN_HOUR}\nwebhooks = [{{name = "sap", '
                      f'url = "{receiver.url}", secret = "{receiver.secret}"}}]\n',
                      encoding="utf-8")
    process = Scheduler(app_config, config)
    try:
        process.wait_until_listening()
        _wait_for(lambda: receiver.unique_ids() == _event_ids(app), "the start-up pass")
        yield process
    finally:
        process.stop()


def test_a_committed_release_reaches_the_webhook_without_waiting_for_the_poll(
        app, plant, receiver, scheduler):
    before = _event_ids(app)
    lot = plant.received("RM-API")  # received, then released by QA through the API
    events = _event_ids(app)
    assert len(events) > len(before)
    _wait_for(lambda: receiver.unique_ids() == events, "the release at the receiver")
    released = [payload for _, payload in receiver.received if payload["lot"] == lot]
    assert released[-1]["status"] == "released"


def test_a_rolled_back_event_wakes_and_delivers_nothing(app, plant, receiver, scheduler):
    lot = plant.received("RM-API", release=False)
    plant.release(lot)
    _wait_for(lambda: receiver.unique_ids() == _event_ids(app), "the release")
    delivered = receiver.unique_ids()
    rolled_back = _write_one(app, lot, commit=False)
    committed = _write_one(app, lot, commit=True)
    _wait_for(lambda: committed in receiver.unique_ids(), "the committed event")
    assert receiver.unique_ids() == delivered + [committed]
    assert rolled_back not in _event_ids(app)


def test_a_wake_up_is_sent_at_commit_only(app, plant, backend):
    """On the wire: after a rolled-back event, a marker sent by the test, then a committed
    event. Wake-ups arrive in the order they were sent, so if the marker comes first, the
    rollback sent nothing; the commit sends exactly one."""
    lot = plant.received("RM-API")
    if backend == "postgresql":
        import psycopg

        engine = app.extensions["qms"].db.engine
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        with psycopg.connect(*args, **kwargs, autocommit=True) as listening:
            listening.execute(f"LISTEN {wake.NOTIFY_CHANNEL}")
            _write_one(app, lot, commit=False)
            listening.execute(f"NOTIFY {wake.NOTIFY_CHANNEL}, 'marker'")
            _write_one(app, lot, commit=True)
            received = []
            deadline = time.monotonic() + DEADLINE_SECONDS
            while len(received) < 2 and time.monotonic() < deadline:
                received += [n.payload for n in listening.notifies(timeout=1, stop_after=1)]
        assert received == ["marker", ""]
        return
    path = wake.socket_path(Path(app.instance_path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listening:
        listening.bind(str(path))
        listening.settimeout(DEADLINE_SECONDS)
        _write_one(app, lot, commit=False)
        listening.sendto(b"marker", str(path))
        _write_one(app, lot, commit=True)
        received = [listening.recv(16), listening.recv(16)]
        listening.setblocking(False)
        with pytest.raises(BlockingIOError):
            listening.recv(16)
    assert received == [b"marker", b"\x01"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_commit_never_waits_for_or_fails_on_the_wake_up(app, plant):
    """SQLite: no scheduler, a stale file where the socket should be, a scheduler that
    reads nothing (its queue fills up): every commit goes through."""
    lot = plant.received("RM-API")
    path = wake.socket_path(Path(app.instance_path))
    assert not path.exists()
    _write_one(app, lot, commit=True)
    path.write_text("stale")
    _write_one(app, lot, commit=True)
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as deaf:
        deaf.bind(str(path))
        committed = [_write_one(app, lot, commit=True) for _ in range(40)]
    assert _event_ids(app)[-40:] == committed


def test_wake_ups_during_a_pass_make_one_more_pass_and_none_is_lost():
    """Threads: a pass held open while wake-ups arrive; the run makes exactly one more pass
    for all of them and schedules nothing; once idle, a burst of wake-ups schedules one run,
    and the wake-ups after that run has started schedule the next."""
    scheduled, passes = [], queue.Queue()
    inside, release = threading.Event(), threading.Event()
    wakeups = wake.Wakeups(lambda: scheduled.append("now"))

    def deliver_pass() -> None:
        passes.put("pass")
        if passes.qsize() == 1:
            inside.set()
            release.wait(DEADLINE_SECONDS)

    run = threading.Thread(target=wakeups.run, args=[deliver_pass])
    run.start()
    assert inside.wait(DEADLINE_SECONDS)
    for _ in range(5):
        wakeups.wake()
    release.set()
    run.join(DEADLINE_SECONDS)
    assert not run.is_alive()
    assert passes.qsize() == 2 and scheduled == []
    wakeups.wake()
    wakeups.wake()
    assert scheduled == ["now"]
    wakeups.run(lambda: passes.put("pass"))  # the scheduled run
    assert passes.qsize() == 3
    wakeups.wake()
    assert scheduled == ["now", "now"]


def test_the_listener_wakes_on_a_datagram_and_removes_its_socket(tmp_path):
    wakes = queue.Queue()
    listener = wake.SocketListener(tmp_path / wake.SOCKET_NAME, lambda: wakes.put("wake"))
    (tmp_path / wake.SOCKET_NAME).write_text("left by a killed scheduler")
    listener.start()
    assert listener.ready.wait(DEADLINE_SECONDS)
    assert wakes.get(timeout=DEADLINE_SECONDS) == "wake"  # the start-up pass
    wake.send_wake(str(tmp_path / wake.SOCKET_NAME))
    assert wakes.get(timeout=DEADLINE_SECONDS) == "wake"
    listener.stop()
    assert not (tmp_path / wake.SOCKET_NAME).exists()
    assert list(tmp_path.iterdir()) == []
