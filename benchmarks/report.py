"""Figures of one benchmark run: the printed table and benchmarks/results/latest.json."""
from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# the production settings the figures depend on, recorded with every run
MEASURED_SETTINGS = ("DATABASE_SQLITE_SYNCHRONOUS", "DATABASE_SQLITE_BUSY_TIMEOUT_MS",
                     "SECURITY_ARGON2_TIME_COST", "SECURITY_ARGON2_MEMORY_KIB",
                     "SECURITY_ARGON2_PARALLELISM", "SECURITY_KEY_WRAP_SCRYPT_LOG_N")

SECTION_TITLES = {
    "writes": "audited write vs. plain insert",
    "chain": "chain verification vs. bare sha256 loop",
    "signing": "cost of one signing",
    "trace": "lot trace (genealogy) vs. the recursive CTE alone",
    "erp": "ERP delivery vs. the same work without the database",
}


@dataclass
class Figure:
    """One line of the table: a measured value beside its same-run baseline."""
    section: str
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    # None when the line has no target to meet
    met: bool | None = None
    # the raw numbers behind the formatted columns, for latest.json
    data: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return {None: "", True: "met", False: "MISSED"}[self.met]


@dataclass
class Report:
    environment: dict
    sizes: dict
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(f"  {figure.name}: {figure.value}"
              + (f"  (baseline {figure.baseline})" if figure.baseline else "")
              + (f"  ratio {figure.ratio}" if figure.ratio else "")
              + (f"  target {figure.target}: {figure.status}" if figure.target else ""),
              flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.met is False]


def environment(quick: bool, settings: dict) -> dict:
    """What the figures depend on: code revision, machine, versions and the settings used."""
    return {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "revision": code_revision(), "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "quick": quick,
            # before the benchmark adds its own load: other work disturbs the figures
            "load_average_at_start": round(os.getloadavg()[0], 2),
            "settings": {key: settings[key] for key in MEASURED_SETTINGS}}


def code_revision() -> str:
    """The git commit measured, with ``+changes`` when the working tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD")
        # --no-optional-locks: never refresh the index, a checkout shared with others
        changed = _git(root, "--no-optional-locks", "status", "--porcelain",
                       "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"  # not a checkout (an installed wheel) or no git
    return commit + ("+changes" if changed else "")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def print_table(report: Report) -> None:
    env = report.environment
    print(f"\n=== QMS benchmarks, {'quick' if env['quick'] else 'full'} sizes, "
          f"revision {env['revision']}, {env['started_at']} ===")
    print(f"Python {env['python']}, SQLite {env['sqlite']} (WAL, synchronous="
          f"{env['settings']['DATABASE_SQLITE_SYNCHRONOUS']}), PostgreSQL "
          f"{env.get('postgresql', 'not measured')}, {env['cpus']} CPUs, {env['platform']}, "
          f"load average {env['load_average_at_start']} at start")
    header = ("measurement", "value", "baseline", "ratio / share", "target", "status")
    for section, title in SECTION_TITLES.items():
        rows = [(f.name, f.value, f.baseline, f.ratio, f.target, f.status)
                for f in report.figures if f.section == section]
        if rows:
            print(f"\n== {title} ==")
            _print_rows(header, rows)
    missed = report.missed()
    print()
    for figure in missed:
        print(f"TARGET MISSED: {figure.name}: {figure.value} (target {figure.target})")
    if not missed:
        print("All targets met.")
    for text in report.notes:
        print(f"note: {text}")


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * width for width in widths)
    print("  ".join(text.ljust(width) for text, width in zip(header, widths)).rstrip())
    print(line)
    for row in rows:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())


def write_json(report: Report, path: Path = RESULTS_DIR / "latest.json") -> Path:
    """Write the report atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"environment": report.environment, "sizes": report.sizes,
                "figures": [asdict(figure) | {"status": figure.status}
                            for figure in report.figures],
                "missed_targets": [figure.name for figure in report.missed()],
                "notes": report.notes}
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)
    return path
