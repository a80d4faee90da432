"""What a validation report must say about itself: which system, which version and commit,
and when it was made, so that the evidence can be tied to the software it qualifies."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SYSTEM = "QMS"
DISTRIBUTION = "qms"
_CHECKOUT = Path(__file__).resolve().parent.parent


def system_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "not installed as a distribution"


def git_commit() -> str | None:
    """The commit of the checkout the code runs from, marked "(modified)" when tracked files
    differ from it; None for an installed wheel or when git is not available."""
    if not (_CHECKOUT / ".git").exists():
        return None
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None
    # --no-optional-locks: reading must not refresh (write) the index of a shared checkout
    changed = _git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return f"{commit} (modified)" if changed else commit


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(_CHECKOUT), *args], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def report_header(**extra: str) -> dict[str, str]:
    """System, version, commit and UTC time of generation, then ``extra`` entries."""
    header = {"System": SYSTEM, "Version": system_version(),
              "Git commit": git_commit() or "not available",
              "Generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    header.update(extra)
    return header
