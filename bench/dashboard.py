"""The dashboard summary's latency, on a small store and a larger one: it must not grow with N.

    .venv/bin/python bench/dashboard.py [--small 2000] [--large 50000] [--calls 2000]
                                        [--postgres URL] [--keep DIR] [--http]
                                        [--http-calls 1000]

Each store is built through the real use cases, as the application writes it: background
checks run to the end (registered, consented, planned, notified, started, findings, concluded,
completed; some disputed), at hours apart on the application's clock so the turnaround
histograms fill, then caseload reads (pages of up to 200 profiles, each read decided by Cedar
and recorded) spread over 120 days (so both stores fill the 90-day series the summary
carries), until the log holds N events. Half the reads are refused: a third of the pages are
read by analysts for marketing, and the recruiter's own in the last 30 days, once the
candidates' 90-day consents have lapsed. A line on stderr every ~10 s tells how far the
build is (its phase, events so far of N, the rate, the phase's time left). Then
`dashboard_summary()` is called `--calls` times on the open application (with the chain's
health read from the kept checkpoints, as the CLI does) and p50/p99 are printed for both
stores, with the ratio of the larger store's p99 to the smaller's. The summary reads a fixed
handful of rows by key, so the ratio stays near 1 (issue #18: p99 < 50 ms at 1M events).

`--keep DIR` (SQLite only): the larger store is built in DIR and reused by the next run that
asks for no more events than it holds, so a 1M-event store is built once. DIR/bench-store.json
says whether the build finished (and how many events, in how long, up to which moment of the
application's clock); a store whose build was interrupted, or that holds fewer events than
asked for, is removed and built again; a DIR holding anything else is refused.

`--http`: then the larger store is served by `backcheck serve --port 0` in a process of its
own (bench/http_load.py's `serve`), a compliance principal is given a token, and
`--http-calls` sequential GET /v1/dashboard/summary on one keep-alive connection (httpx) are
timed: p50, p99 and max, against the target (p99 < 50 ms). The server judges on the real
clock, not the build's, so its 90-day series may be empty: the rows read are the same.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
from http_load import serve
from machine import speed_line
from scratch import scratch_store

from domain.errors import PrincipalAlreadyExistsError
from infra.audit.health import chain_health
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AddPrincipal,
    CompleteInvestigation,
    RaiseDispute,
    ReadProfiles,
    ResolveDispute,
    RotatePrincipal,
)
from tests import story as s
from tests.conftest import FakeClock

PAGE = 200
MARKER = "bench-store.json"
COMPLIANCE = "compliance:dashboard-bench"
TARGET_MS = 50


READS_DAYS = 120  # the reads of a build are spread over this many days of its clock


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Progress:
    """A line on stderr every `every` seconds while a store is built: a 1M-event build takes
    tens of minutes, and its rate says early whether it is worth waiting for. The build has
    two phases at very different paces (background checks, about 11 events each and slow;
    then pages of 200 recorded reads), so the time left is the current phase's, at its pace."""

    def __init__(self, app: Backcheck, target: int, every: float = 10.0) -> None:
        self.app, self.target, self.every = app, target, every
        self.last = time.perf_counter()
        self.last_events = 0
        self.phase = ""
        self.phase_started, self.phase_done = self.last, 0

    def tick(self, phase: str, done: int, total: int) -> None:
        """`done` of the phase's `total` units (checks, or events) are done."""
        now = time.perf_counter()
        if phase != self.phase:
            self.phase, self.phase_started, self.phase_done = phase, now, done
        if now - self.last < self.every:
            return
        events = self.app.recorder.max_notification_id() or 0
        rate = (events - self.last_events) / (now - self.last)
        pace = (done - self.phase_done) / (now - self.phase_started)
        left = f"{(total - done) / pace / 60:.1f} min" if pace else "?"
        print(
            f"  building, {phase}: {done:,} / {total:,} ({done / total:.0%}); log "
            f"{events:,} / {self.target:,} events, {rate:,.0f} events/s lately; "
            f"{phase} done in about {left} at this pace",
            file=sys.stderr,
            flush=True,
        )
        self.last, self.last_events = now, events


def run_check(app: Backcheck, clock: FakeClock, n: int) -> s.Story:
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
    return story


def build(settings: Settings, events: int) -> tuple[Backcheck, float, FakeClock]:
    """The application on a store of `events` events, the seconds building it took, and its
    clock (where the build left it)."""
    clock = FakeClock()
    app = build_app(settings, clock=clock)
    progress = Progress(app, events)
    started = time.perf_counter()
    checks = max(5, events // 100)
    # the caseload: the last PAGE candidates registered (kept as they come: finding them in
    # the log instead would replay it again and again, a build quadratic in its size)
    caseload: deque[UUID] = deque(maxlen=PAGE)
    for n in range(checks):
        caseload.append(run_check(app, clock, n).candidate_id)
        progress.tick("checks", n + 1, checks)
    candidates = list(caseload)
    # the reads spread over 120 days, so both stores fill the 90-day series alike: what is
    # compared is the cost of the store's size, not of the series' length (bounded anyway)
    pages = max(1, (events - (app.recorder.max_notification_id() or 0)) // len(candidates))
    step = timedelta(days=READS_DAYS) / pages
    page = 0
    while (head := app.recorder.max_notification_id() or 0) < events:
        progress.tick("reads", head, events)
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
    return app, time.perf_counter() - started, clock


def kept_store(folder: Path, events: int) -> tuple[Settings, dict[str, object] | None]:
    """Settings for the store kept in `folder`, and its marker if a finished build of at least
    `events` events is there to reuse. Anything else of ours there (a build interrupted, or
    too small) is removed; a folder holding something not ours is refused."""
    marker = folder / MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found.get("complete") and found["events"] >= events:
            return _settings(folder), found
        shutil.rmtree(folder)
    elif folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"--keep {folder}: the folder holds files this bench did not write")
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"complete": False, "target": events}))
    return _settings(folder), None


def _settings(folder: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{folder / 'store.sqlite'}", data_dir=folder)


def open_store(
    settings: Settings, events: int, keep: Path | None, kept: dict[str, object] | None
) -> tuple[Backcheck, str]:
    """The application on the store (built now, or reused from `kept`), and how it came."""
    if kept is not None:
        clock = FakeClock(datetime.fromisoformat(str(kept["clock"])))
        took = float(str(kept["built_seconds"]))
        return build_app(settings, clock=clock), f"reused from {keep} (built in {took:.0f} s)"
    app, took, clock = build(settings, events)
    if keep is not None:
        done = {
            "complete": True,
            "events": app.recorder.max_notification_id() or 0,
            "built_seconds": round(took, 1),
            "clock": clock.now.isoformat(),
        }
        (keep / MARKER).write_text(json.dumps(done))
    return app, f"built in {took:.0f} s" + (f", kept in {keep}" if keep else "")


def measure(
    settings: Settings,
    events: int,
    calls: int,
    keep: Path | None = None,
    kept: dict[str, object] | None = None,
) -> dict[str, float]:
    app, came = open_store(settings, events, keep, kept)
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
        f"  {head} events ({came}; {summary.refusals.total} refused reads, "
        f"{sum(t.count for t in summary.turnaround)} turnarounds): first summary "
        f"{first_ms:.1f} ms (applied {summary.lag.behind} pending), then over {calls} calls "
        f"p50 {statistics.median(times):.3f} ms, p99 {percentile(times, 0.99):.3f} ms, "
        f"max {max(times):.3f} ms"
    )
    return {"events": head, "p50": statistics.median(times), "p99": percentile(times, 0.99)}


def compliance_token(settings: Settings) -> str:
    """A token for the bench's compliance principal: added on the first run on a store, its
    token rotated on the next (a token is shown once)."""
    app = build_app(settings)
    try:
        try:
            return app.add_principal(
                AddPrincipal(name=COMPLIANCE, role=Role.COMPLIANCE, actor="bench")
            ).token
        except PrincipalAlreadyExistsError:
            return app.rotate_principal(RotatePrincipal(name=COMPLIANCE, actor="bench")).token
    finally:
        app.close()


def over_http(settings: Settings, calls: int) -> None:
    """`calls` sequential GET /v1/dashboard/summary on one keep-alive connection to a server
    of its own on the store; the server is stopped whatever happens."""
    token = compliance_token(settings)
    process, base = serve(settings)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            started = time.perf_counter()
            first = client.get("/v1/dashboard/summary")
            first_ms = (time.perf_counter() - started) * 1000
            if first.status_code != 200:
                raise SystemExit(f"summary answered {first.status_code}: {first.text[:300]}")
            behind = first.json()["lag"]["behind"]
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                answer = client.get("/v1/dashboard/summary")
                times.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"summary answered {answer.status_code}: {answer.text[:300]}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    p99 = percentile(times, 0.99)
    print(
        f"  over HTTP (GET /v1/dashboard/summary, one keep-alive connection): first "
        f"{first_ms:.1f} ms (applied {behind} pending), then over {calls} calls "
        f"p50 {statistics.median(times):.3f} ms, p99 {p99:.3f} ms, max {max(times):.3f} ms; "
        f"target p99 < {TARGET_MS} ms: {'met' if p99 < TARGET_MS else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="events in the small store")
    parser.add_argument("--large", type=int, default=50_000, help="events in the larger store")
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: embedded SQLite)")
    parser.add_argument("--keep", type=Path, help="build the larger store here, reuse it after")
    parser.add_argument("--http", action="store_true", help="also time the summary over HTTP")
    parser.add_argument("--http-calls", type=int, default=1_000)
    args = parser.parse_args()
    if args.keep and args.postgres:
        parser.error("--keep keeps a SQLite store: leave out --postgres")
    print(f"dashboard summary latency ({'PostgreSQL' if args.postgres else 'SQLite'})")
    # the kept folder looked at first: a folder that is not ours is refused before any work
    kept_settings, kept = kept_store(args.keep, args.large) if args.keep else (None, None)
    print(f"  machine: {speed_line()}")
    with scratch_store("dashboard-", args.postgres) as settings:
        small = measure(settings, args.small, args.calls)
    if kept_settings is not None:
        settings = kept_settings
        large = measure(settings, args.large, args.calls, args.keep, kept)
        if args.http:
            over_http(settings, args.http_calls)
    else:
        with scratch_store("dashboard-", args.postgres) as settings:
            large = measure(settings, args.large, args.calls)
            if args.http:
                over_http(settings, args.http_calls)
    ratio = large["p99"] / small["p99"]
    print(
        f"  p99 ratio, {large['events']:.0f} events to {small['events']:.0f}: {ratio:.2f} "
        f"({large['events'] / small['events']:.0f}x the events); target p99 < {TARGET_MS} ms "
        f"in process: {'met' if large['p99'] < TARGET_MS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
