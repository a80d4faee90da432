"""``python -m benchmarks`` (``make bench``): run the benchmarks, print the table, write
benchmarks/results/latest.json."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from time import perf_counter

from benchmarks import chain, erp, signing, trace, writes
from benchmarks.databases import (POSTGRES_URL_VARIABLE, PostgresScratch, SqliteScratch,
                                  engine_options, postgres_server_url, postgres_unreachable,
                                  postgres_version, run_id)
from benchmarks.report import (RESULTS_DIR, SECTION_TITLES, Report, environment, print_table,
                               write_json)
from benchmarks.sizes import FULL, QUICK, Sizes
from qms.settings import load_settings

# a load average above this share of the CPUs before the run means other work is running
BUSY_LOAD_PER_CPU = 0.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (smoke test); targets are still reported")
    parser.add_argument("--skip-postgres", action="store_true",
                        help=f"SQLite only (automatic when {POSTGRES_URL_VARIABLE} or the "
                             "default server is unreachable)")
    parser.add_argument("--only", action="append", choices=list(SECTION_TITLES),
                        help="run only this section (repeatable)")
    parser.add_argument("--profile-verify", action="store_true",
                        help="print a cProfile of verify_chain (top 10 by own time; main thread "
                             "only)")
    parser.add_argument("--chain-events", type=int, metavar="N",
                        help="events in the chain that verification is timed on (default "
                             f"{FULL.chain_events:,}, quick {QUICK.chain_events:,})")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json",
                        help="where to write the JSON results")
    return parser.parse_args(argv)


def production_settings() -> dict:
    """config/default.toml with the site's overrides, as the application loads them.

    The benchmark's own variable is not a setting; load_settings() refuses unknown QMS_*
    variables, so it is left out here.
    """
    environ = {name: value for name, value in os.environ.items()
               if name != POSTGRES_URL_VARIABLE}
    return load_settings(environ)


def open_scratches(args: argparse.Namespace, options: dict, report: Report, run: str) -> list:
    scratches = [SqliteScratch(run, options)]
    if args.skip_postgres:
        report.note("PostgreSQL skipped (--skip-postgres)")
        return scratches
    server = postgres_server_url()
    reason = postgres_unreachable(server)
    if reason:
        report.note(f"PostgreSQL skipped: unreachable ({reason})")
        return scratches
    report.environment["postgresql"] = postgres_version(server)
    return scratches + [PostgresScratch(run, server)]


def run_sections(args: argparse.Namespace, report: Report, settings: dict,
                 sizes: Sizes) -> None:
    sections = args.only or list(SECTION_TITLES)
    options = engine_options(settings)
    for number, section in enumerate(sections, start=1):
        print(f"\n[{number}/{len(sections)}] {SECTION_TITLES[section]}", flush=True)
        started = perf_counter()
        if section == "writes":
            scratches = open_scratches(args, options, report, run_id())
            try:
                writes.run(report, scratches, options, sizes)
            finally:
                for scratch in scratches:
                    scratch.close()
        elif section == "chain":
            scratches = open_scratches(args, options, report, run_id())
            postgres = next((s for s in scratches if isinstance(s, PostgresScratch)), None)
            try:
                chain.run(report, options, sizes, profile=args.profile_verify,
                          postgres=postgres)
            finally:
                for scratch in scratches:
                    scratch.close()
        elif section == "trace":
            scratches = open_scratches(args, options, report, run_id())
            try:
                trace.run(report, scratches, options, quick=args.quick)
            finally:
                for scratch in scratches:
                    scratch.close()
        elif section == "erp":
            scratches = open_scratches(args, options, report, run_id())
            try:
                erp.run(report, scratches, options, settings, quick=args.quick)
            finally:
                for scratch in scratches:
                    scratch.close()
        else:
            signing.run(report, settings, sizes)
        print(f"  ({perf_counter() - started:.0f} s)", flush=True)


def note_busy_machine(report: Report) -> None:
    load, cpus = report.environment["load_average_at_start"], report.environment["cpus"]
    if load > BUSY_LOAD_PER_CPU * cpus:
        report.note(f"the machine was busy before the run (load average {load} on {cpus} "
                    f"CPUs): other work shares the CPUs and disks, so the figures are noisier")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.chain_events:
        sizes = replace(sizes, chain_events=args.chain_events)
    settings = production_settings()
    report = Report(environment(args.quick, settings), sizes.as_dict())
    env = report.environment
    print(f"QMS benchmarks ({'quick' if args.quick else 'full'} sizes) at {env['revision']} - "
          f"Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs", flush=True)
    note_busy_machine(report)
    run_sections(args, report, settings, sizes)
    print_table(report)
    print(f"\nwritten to {write_json(report, args.output)}")
    return 0


if __name__ == "__main__":  # spawned writer processes import this module too
    sys.exit(main())
