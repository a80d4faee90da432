"""`make run`: create a demo instance if there is none, print how to log in, serve."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

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
    subprocess.run(qms + ["serve", "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
