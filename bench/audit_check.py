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
seconds per 100k events, so linear growth shows as a steady figure.

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

from dashboard import kept_store, open_store
from machine import speed_line

from infra.config import Settings

BACKCHECK = Path(sys.executable).parent / "backcheck"
TARGET_SECONDS_1M = 60
TARGET_RSS_MB = 500


def build(folder: Path, events: int) -> Settings:
    """The store of at least `events` events in `folder`, built now or reused."""
    settings, kept = kept_store(folder, events)
    app, came = open_store(settings, events, folder, kept)
    try:
        head = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    print(f"  store {folder}: {head:,} events, {came}", flush=True)
    return settings


def audit_check(settings: Settings) -> dict[str, float]:
    """One `backcheck audit check --json` on the store: its summary, seconds and peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATABASE_URL"] = str(settings.database_url)
    env["BACKCHECK_DATA_DIR"] = str(settings.data_dir)
    out = Path(settings.data_dir) / "audit-check.out"
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
    parser.add_argument("--keep", type=Path, required=True, help="stores kept in PREFIX-N")
    parser.add_argument("--events", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--only-build", action="store_true", help="build the stores, no check")
    args = parser.parse_args()
    print("audit check: time and peak memory by store size (SQLite)")
    print(f"  machine: {speed_line()}", flush=True)
    stores = [(n, build(Path(f"{args.keep}-{n}"), n)) for n in sorted(args.events)]
    if args.only_build:
        return
    runs = []
    for _, settings in stores:
        run = audit_check(settings)
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
