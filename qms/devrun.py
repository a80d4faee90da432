"""`make run`: create a demo instance if there is none, print how to log in, and serve it
with its scheduler (`qms jobs`: checkpoints, chain verification, lot expiry, CAPA overdue,
ERP delivery) beside the server, as a plant runs them; stopping one stops both."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

from qms.settings import instance_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    qms = [sys.executable, "-m", "qms"]
    # the local demo is served over plain HTTP: secure-only cookies would never come back
    os.environ.setdefault("QMS_SECURITY_SECURE_COOKIES", "false")
    if not (instance_path() / "secret_key").exists():
        print(f"creating a demo instance in {instance_path()} ...")
        subprocess.run(qms + ["init", "--demo"], check=True)
    else:
        subprocess.run(qms + ["db", "upgrade"], check=True)
    from qms.demo import login_help

    print("\n" + login_help(f"http://{args.host}:{args.port}") + "\n", flush=True)
    # a SIGTERM (a service manager, `kill`) stops both children too, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(0))
    processes = [subprocess.Popen(qms + ["jobs"]),
                 subprocess.Popen(qms + ["serve", "--host", args.host, "--port",
                                         str(args.port)])]
    try:
        # Ctrl-C reaches the server and the scheduler too: they share the terminal
        with contextlib.suppress(KeyboardInterrupt):
            wait_for_either(processes)
    finally:
        for process in processes:
            stop(process)


def wait_for_either(processes: list[subprocess.Popen]) -> None:
    """Until one of the processes ends: the other is not left running on its own."""
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
