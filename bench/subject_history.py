"""One subject's history, timeline and as-of view, on a small store and a larger one: the cost
must follow the subject's events, not the store's (issue #19: < 100 ms at 1M events, within
2x of the same at 50k).

    .venv/bin/python bench/subject_history.py [--small 50000] [--large 200000] [--runs 5]
                                              [--subjects 20] [--keep DIR]

The stores are bench/dashboard.py's, built through the real use cases (background checks run
to the end, then pages of recorded profile reads about the last 200 candidates); `--keep DIR`
keeps the larger one for the next run, as there. Two kinds of subject are timed in each:
- a candidate whose check ran early and was never read again: the same dozen or so events in
  both stores, so its figures must stay level as the store grows;
- a candidate of the caseload, read on every page: its events grow with the store (a page of
  reads records one event per candidate), so its figures are shown per event.

For each, `iter_events` (what `backcheck events --subject` prints), `timeline` (`audit
timeline`) and `as_of` (`audit as-of`) are called on the open application and the median of
`--runs` runs over `--subjects` subjects is printed with min and max, beside the baseline
measured in the same run: the library reading and decoding the same number of events as one
run of consecutive notifications (`select_notifications` + the mapper), the raw cost of that
many events in that store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from dashboard import kept_store, open_store
from machine import speed_line
from scratch import scratch_store

from infra.config import Settings
from projections import events as ev
from services.application import Backcheck

TARGET_MS = 100.0


def early_subjects(app: Backcheck, n: int) -> list[UUID]:
    """Candidates registered first: their checks ran while the store was small."""
    found: list[UUID] = []
    for notification in app.recorder.select_notifications(start=1, limit=20_000):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, ev.CandidateRegistered):
            found.append(event.originator_id)
            if len(found) == n:
                break
    return found


def caseload_subjects(app: Backcheck, n: int) -> list[UUID]:
    """Candidates of the last pages of reads (the newest events are their reads)."""
    head = app.recorder.max_notification_id() or 0
    page = app.recorder.select_notifications(start=max(1, head - 5 * n), limit=5 * n)
    found: list[UUID] = []
    for notification in reversed(page):
        subject = getattr(app.mapper.to_domain_event(notification), "candidate_id", None)
        if isinstance(subject, UUID) and subject not in found:
            found.append(subject)
    return found[:n]


def timed(work: Callable[[], Any]) -> tuple[float, int]:
    started = time.perf_counter()
    count = len(list(work()))
    return (time.perf_counter() - started) * 1000, count


def baseline(app: Backcheck, count: int) -> Callable[[], list[Any]]:
    """The library reading and decoding `count` consecutive events from the middle of the log."""
    middle = (app.recorder.max_notification_id() or 0) // 2

    def read() -> list[Any]:
        page = app.recorder.select_notifications(start=middle, limit=max(1, count))
        return [app.mapper.to_domain_event(n) for n in page]

    return read


def figures(app: Backcheck, subjects: list[UUID], runs: int) -> dict[str, list[float]]:
    """Milliseconds per subject for each query (median over `runs`), and the events each had."""
    out: dict[str, list[float]] = {"events": [], "timeline": [], "as_of": [], "raw": [], "n": []}
    later = app.now()
    for subject in subjects:
        per: dict[str, list[float]] = {k: [] for k in ("events", "timeline", "as_of", "raw")}
        count = 0
        for _ in range(runs):
            ms, count = timed(lambda s=subject: app.iter_events(s))
            per["events"].append(ms)
            per["timeline"].append(timed(lambda s=subject: app.timeline(s))[0])
            per["as_of"].append(timed(lambda s=subject: app.as_of(later, s))[0])
            per["raw"].append(timed(baseline(app, count))[0])
        for key, values in per.items():
            out[key].append(statistics.median(values))
        out["n"].append(count)
    return out


def report(label: str, head: int, kind: str, got: dict[str, list[float]]) -> dict[str, float]:
    events = statistics.median(got["n"])
    medians = {k: statistics.median(v) for k, v in got.items()}
    print(f"  {label}, {head:,} events in the store; {kind} ({events:.0f} events each, median):")
    for key, name in (("events", "events --subject"), ("timeline", "audit timeline")):
        values = got[key]
        print(
            f"    {name:<17} median {medians[key]:8.2f} ms  min {min(values):8.2f}  "
            f"max {max(values):8.2f}  ratio to raw {medians[key] / medians['raw']:5.2f}"
        )
    print(
        f"    {'audit as-of':<17} median {medians['as_of']:8.2f} ms  "
        f"min {min(got['as_of']):8.2f}  max {max(got['as_of']):8.2f}"
    )
    print(f"    {'raw (library)':<17} median {medians['raw']:8.2f} ms for the same count")
    return medians


def measure(
    settings: Settings, events: int, runs: int, n: int, keep: Path | None, kept: Any
) -> dict[str, dict[str, float]]:
    app, came = open_store(settings, events, keep, kept)
    try:
        head = app.recorder.max_notification_id() or 0
        print(f"  store of {head:,} events ({came})", flush=True)
        early = report("early", head, "checked once", figures(app, early_subjects(app, n), runs))
        busy = figures(app, caseload_subjects(app, n), runs)
        per_event = {k: [v / c for v, c in zip(busy[k], busy["n"], strict=True)] for k in busy}
        report("caseload", head, "read on every page", busy)
        return {
            "early": early,
            "caseload_per_event": {k: statistics.median(v) for k, v in per_event.items()},
            "head": {"events": head},
        }
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build the larger store here, reuse it after")
    args = parser.parse_args()
    print("one subject's history (SQLite)")
    kept_settings, kept = kept_store(args.keep, args.large) if args.keep else (None, None)
    print(f"  machine: {speed_line()}", flush=True)
    with scratch_store("subject-", None) as settings:
        small = measure(settings, args.small, args.runs, args.subjects, None, None)
    if kept_settings is not None:
        large = measure(kept_settings, args.large, args.runs, args.subjects, args.keep, kept)
    else:
        with scratch_store("subject-", None) as settings:
            large = measure(settings, args.large, args.runs, args.subjects, None, None)
    grew = large["head"]["events"] / small["head"]["events"]
    worst = max(large["early"][k] for k in ("events", "timeline"))
    print(f"  the larger store holds {grew:.0f}x the events; for the same early subject:")
    for key in ("events", "timeline", "as_of"):
        ratio = large["early"][key] / small["early"][key]
        print(f"    {key:<9} {ratio:5.2f}x the small store's (target within 2x)")
    per = large["caseload_per_event"]["events"] / small["caseload_per_event"]["events"]
    print(f"    caseload events --subject per event: {per:5.2f}x the small store's")
    print(
        f"  target < {TARGET_MS:.0f} ms for one subject at 1M events: "
        f"{'met' if worst < TARGET_MS else 'NOT met'} here ({worst:.2f} ms, early subject)",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
