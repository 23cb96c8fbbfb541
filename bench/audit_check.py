"""`backcheck audit check` on stores of growing size: its time must grow linearly with the
log, its memory not with it at all.

    .venv/bin/python bench/audit_check.py --keep PREFIX [--events 50000 200000]
                                          [--only-build]

Each store is built as bench/dashboard.py builds its larger one, through the real use cases:
background checks run to the end, then pages of caseload reads, each decided by Cedar and
recorded, until the log holds N events (so the log is mostly access records, as a store in
use is). It is built in the folder PREFIX-N and kept there: a later run reuses it (see
bench/dashboard.py `--keep`). Then `backcheck audit check --json` runs on it in a process of
its own, as an operator runs it; the wall time and the peak resident memory of that process
(the kernel's count for it alone, from `os.wait4`) are printed for each store, with the
seconds per 100k events, so linear growth shows as a steady figure. The stores are built in
processes of their own too, and this one never opens the application: a child's peak
counts from its parent's size at the fork, so a large parent would hide a small check.

Target (issue #19): under 60 s at 1M events, peak RSS under 500 MB, linear from 50k to 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import speed_line

BACKCHECK = Path(sys.executable).parent / "backcheck"
TARGET_SECONDS_1M = 60
TARGET_RSS_MB = 500


def build(folder: Path, events: int) -> None:
    """The store of at least `events` events in `folder`, built now or reused (in a process
    of its own: see the module's docstring)."""
    command = [sys.executable, __file__, "--build-in", str(folder), "--events", str(events)]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"building the store in {folder} failed (above)")


def build_here(folder: Path, events: int) -> None:
    from dashboard import kept_store, open_store

    settings, kept = kept_store(folder, events)
    app, came = open_store(settings, events, folder, kept)
    try:
        head = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    print(f"  store {folder}: {head:,} events, {came}", flush=True)


def audit_check(folder: Path) -> dict[str, float]:
    """One `backcheck audit check --json` on the store kept in `folder` (as bench/dashboard.py
    keeps it): its summary, seconds and peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATABASE_URL"] = f"sqlite:///{folder / 'store.sqlite'}"
    env["BACKCHECK_DATA_DIR"] = str(folder)
    out = folder / "audit-check.out"
    started = time.perf_counter()
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [str(BACKCHECK), "audit", "check", "--json"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    lines = out.read_text().splitlines()
    if process.returncode not in (0, 1) or not lines:
        raise SystemExit(f"audit check exited {process.returncode}: {out.read_text()[-2000:]}")
    summary = json.loads(lines[-1])
    return {
        "events": summary["events"],
        "violations": summary["violations"],
        "seconds": seconds,
        "rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="stores kept in PREFIX-N (required)")
    parser.add_argument("--events", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--only-build", action="store_true", help="build the stores, no check")
    parser.add_argument("--build-in", type=Path, help=argparse.SUPPRESS)  # one store, here
    args = parser.parse_args()
    if args.build_in is not None:
        build_here(args.build_in, args.events[0])
        return
    if args.keep is None:
        parser.error("--keep PREFIX: where the stores are built and kept")
    print("audit check: time and peak memory by store size (SQLite)")
    print(f"  machine: {speed_line()}", flush=True)
    folders = [Path(f"{args.keep}-{n}") for n in sorted(args.events)]
    for folder, n in zip(folders, sorted(args.events), strict=True):
        build(folder, n)
    if args.only_build:
        return
    runs = []
    for folder in folders:
        run = audit_check(folder)
        runs.append(run)
        print(
            f"  {run['events']:,.0f} events: {run['seconds']:.1f} s "
            f"({run['seconds'] / run['events'] * 1e5:.2f} s per 100k events), "
            f"peak RSS {run['rss_mb']:.0f} MB, {run['violations']:.0f} violations",
            flush=True,
        )
    first, last = runs[0], runs[-1]
    per_event = (last["seconds"] / last["events"]) / (first["seconds"] / first["events"])
    at_1m = last["seconds"] / last["events"] * 1_000_000
    print(
        f"  time per event, {last['events']:,.0f} to {first['events']:,.0f} events: "
        f"{per_event:.2f}x (1.0 is linear); peak RSS {first['rss_mb']:.0f} -> "
        f"{last['rss_mb']:.0f} MB; at this rate 1M events take {at_1m:.0f} s (target < "
        f"{TARGET_SECONDS_1M} s, RSS < {TARGET_RSS_MB} MB)"
    )


if __name__ == "__main__":
    main()
