"""A wake-up that APScheduler skips (the last run had returned but was still counted as
running) is asked for again, so the wake-ups after it are not ignored until the poll."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from apscheduler.executors import pool
from apscheduler.schedulers.background import BackgroundScheduler

from qms.erp import wake


def test_a_wake_up_in_the_executor_s_bookkeeping_window_is_not_lost_for_the_next_ones(
        tmp_path, monkeypatch):
    real_run_job = pool.run_job
    passes, window = [], threading.Event()

    def run_job(*args, **kwargs):  # the job has returned; APScheduler still counts it
        events = real_run_job(*args, **kwargs)
        window.set()
        time.sleep(0.5)  # e.g. "Job ... executed successfully" logged, a thread switch
        window.clear()
        return events

    monkeypatch.setattr(pool, "run_job", run_job)
    db = SimpleNamespace(engine=SimpleNamespace(dialect=SimpleNamespace(name="sqlite")))
    scheduler = BackgroundScheduler(timezone="UTC")
    listener = wake.schedule_delivery(scheduler, db=db, instance=tmp_path,
                                      deliver_pass=lambda: passes.append(time.monotonic()),
                                      poll_seconds=3600)
    scheduler.start()
    try:
        assert listener.ready.wait(10)
        deadline = time.monotonic() + 10
        while not window.is_set():  # the start-up run has just ended
            assert time.monotonic() < deadline
            time.sleep(0.001)
        wake.send_wake(str(wake.socket_path(tmp_path)))  # a commit now: skipped by APScheduler
        time.sleep(1.5)
        assert len(passes) >= 1
        before = len(passes)
        wake.send_wake(str(wake.socket_path(tmp_path)))  # a commit a second later
        deadline = time.monotonic() + 5
        while len(passes) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(passes) > before, "the next commit's wake-up was ignored: it waits for " \
            "the poll (poll_seconds)"
    finally:
        scheduler.shutdown(wait=False)
