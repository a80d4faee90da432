"""`make run` (qms.devrun) serves the demo instance with its scheduler beside it, as a plant
runs them, and stopping it stops both: real processes on a fresh SQLite instance."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def eventually(condition, what: str):
    """Poll ``condition`` until it is truthy; a guard against a hang, not a timing."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"never happened: {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def chain_checks(database) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT count(*) FROM audit_chain_checks").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def children_of(pid: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # pid (command) state ppid ...: the command may hold spaces and parentheses
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(entry)
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_run_serves_with_the_scheduler_and_stops_both(tmp_path, stop):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QMS_")}
    env.update(QMS_INSTANCE_PATH=str(tmp_path / "instance"),
               QMS_SECURITY_ARGON2_MEMORY_KIB="8192", QMS_SECURITY_KEY_WRAP_SCRYPT_LOG_N="10")
    port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "qms.devrun", "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        eventually(lambda: answers(f"http://127.0.0.1:{port}/api/v1/health"), "served")
        # the scheduler's start-up run verifies the chain and records it for the audit page
        eventually(lambda: chain_checks(tmp_path / "instance" / "qms.sqlite3"),
                   "the scheduler verified the chain")
        children = children_of(run.pid)
        assert len(children) == 2  # qms jobs and qms serve
        if stop == "ctrl-c":  # the terminal signals the whole process group
            os.killpg(run.pid, signal.SIGINT)
        else:  # a service manager, or `kill`, signals make run alone
            os.kill(run.pid, signal.SIGTERM)
        run.wait(timeout=60)
        assert not any(os.path.exists(f"/proc/{child}") for child in children)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
