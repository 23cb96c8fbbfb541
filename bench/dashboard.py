"""The dashboard summary's latency, on a small store and a larger one: it must not grow with N.

    .venv/bin/python bench/dashboard.py [--small 2000] [--large 50000] [--calls 2000]
                                        [--postgres URL]

Each store is built through the real use cases, as the application writes it: background
checks run to the end (registered, consented, planned, notified, started, findings, concluded,
completed; some disputed), at hours apart on the application's clock so the turnaround
histograms fill, then caseload reads (pages of up to 200 profiles, each read decided by Cedar
and recorded), a third of them refused, spread over 120 days (so both stores fill the 90-day
series the summary carries), until the log holds N events. Then
`dashboard_summary()` is called `--calls` times on the open application (with the chain's
health read from the kept checkpoints, as the CLI does) and p50/p99 are printed for both
stores, with the ratio of the larger store's p99 to the smaller's. The summary reads a fixed
handful of rows by key, so the ratio stays near 1 (issue #18: p99 < 50 ms at 1M events).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from machine import speed_line
from scratch import scratch_store

from infra.audit.health import chain_health
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import CompleteInvestigation, RaiseDispute, ReadProfiles, ResolveDispute
from tests import story as s
from tests.conftest import FakeClock

PAGE = 200


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_check(app: Backcheck, clock: FakeClock, n: int) -> None:
    """One background check to the end, its conclusion `n % 40` hours after its plan."""
    story = s.investigation_under_way(app, f"Candidate {n}")
    clock.advance(hours=n % 40 + 1)
    s.confirm_check(app, story)
    if n % 7 == 0:  # a disputed check, the dispute rejected
        dispute = RaiseDispute(
            investigation_id=story.investigation,
            check_id=story.check_id,
            statement="the dates are wrong",
            actor=s.CANDIDATE,
        )
        app.raise_dispute(dispute)
        app.resolve_dispute(
            ResolveDispute(
                investigation_id=story.investigation,
                dispute_id=dispute.dispute_id,
                upheld=False,
                response="the employer's records confirm them",
                actor=s.INVESTIGATOR,
            )
        )
    app.complete_investigation(
        CompleteInvestigation(investigation_id=story.investigation, actor=s.INVESTIGATOR)
    )
    clock.advance(hours=-(n % 40 + 1))
    clock.advance(minutes=1)


def build(settings: Settings, events: int) -> tuple[Backcheck, float]:
    """The application on a store of `events` events, and the seconds building it took."""
    clock = FakeClock()
    app = build_app(settings, clock=clock)
    started = time.perf_counter()
    checks = max(5, events // 100)
    candidates = []
    for n in range(checks):
        run_check(app, clock, n)
        if n % 50 == 0:
            candidates = [
                e.candidate_id
                for _, e in app.replay()
                if type(e).__qualname__.endswith("Registered")
            ][-PAGE:]
    # the reads spread over 120 days, so both stores fill the 90-day series alike: what is
    # compared is the cost of the store's size, not of the series' length (bounded anyway)
    pages = max(1, (events - (app.recorder.max_notification_id() or 0)) // len(candidates))
    step = timedelta(days=120) / pages
    page = 0
    while (app.recorder.max_notification_id() or 0) < events:
        refused = page % 3 == 0
        app.read_profiles(
            ReadProfiles(
                candidate_ids=candidates,
                principal=s.RECRUITER if not refused else f"growth:analyst{page % 5}",
                role=Role.RECRUITER,
                purpose="marketing" if refused else s.PURPOSE,
            )
        )
        page += 1
        clock.now += step
    return app, time.perf_counter() - started


def measure(settings: Settings, events: int, calls: int) -> dict[str, float]:
    app, took = build(settings, events)
    try:
        head = app.recorder.max_notification_id() or 0
        first = time.perf_counter()
        summary = app.dashboard_summary(chain_health(settings))
        first_ms = (time.perf_counter() - first) * 1000
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            app.dashboard_summary(chain_health(settings))
            times.append((time.perf_counter() - started) * 1000)
    finally:
        app.close()
    print(
        f"  {head} events (built in {took:.0f} s; {summary.refusals.total} refused reads, "
        f"{sum(t.count for t in summary.turnaround)} turnarounds): first summary "
        f"{first_ms:.1f} ms (applied {summary.lag.behind} pending), then over {calls} calls "
        f"p50 {statistics.median(times):.3f} ms, p99 {percentile(times, 0.99):.3f} ms, "
        f"max {max(times):.3f} ms"
    )
    return {"events": head, "p50": statistics.median(times), "p99": percentile(times, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="events in the small store")
    parser.add_argument("--large", type=int, default=50_000, help="events in the larger store")
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: embedded SQLite)")
    args = parser.parse_args()
    print(f"dashboard summary latency ({'PostgreSQL' if args.postgres else 'SQLite'})")
    print(f"  machine: {speed_line()}")
    results = []
    for events in (args.small, args.large):
        with scratch_store("dashboard-", args.postgres) as settings:
            results.append(measure(settings, events, args.calls))
    small, large = results
    ratio = large["p99"] / small["p99"]
    print(
        f"  p99 ratio, {large['events']:.0f} events to {small['events']:.0f}: {ratio:.2f} "
        f"({large['events'] / small['events']:.0f}x the events); target p99 < 50 ms: "
        f"{'met' if large['p99'] < 50 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
