"""The suite's figures (bench/suite.py runs and prints them). Each is measured through the real
code, with its baseline beside it in the same run; the other scripts in bench/ hold the pieces
used here and can still be run alone for one figure in more detail.

Per store (built once, bench/stores.py): one subject's history and timeline, audited profile
reads with 8 clients, and, each in a `backcheck` process of its own timed with its peak memory,
`audit verify`, `audit check` and `views rebuild`. Once: commands against the raw library
(SQLite; PostgreSQL when given), signed commands through the intake against unsigned ones,
the relay against a raw producer, the projection lag through Kafka, and `backcheck --help`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from access_reads import Person, profile_read, raw_application, raw_read, run
from commands import one_round, sides
from dashboard import READS_DAYS
from intake_signing import measure as signing_measure
from projection_lag import measure as lag_measure
from projection_lag import percentile
from relay_throughput import raw_round, relay_round
from scratch import running_broker, scratch_store
from subject_history import early_subjects
from subject_history import figures as subject_figures
from suite import Check, Figure, repeat

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.lists import ListCandidates
from tests.conftest import FakeClock
from tests.kafka import store_env

BACKCHECK = str(Path(sys.executable).with_name("backcheck"))


def candidates(app: Backcheck) -> list[UUID]:
    """Every candidate in the store, from the list views (a page at a time, by key)."""
    found: list[UUID] = []
    cursor = None
    while True:
        page = app.list_candidates(ListCandidates(cursor=cursor, limit=200), Role.COMPLIANCE)
        found += [item.candidate_id for item in page.items]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def raw_log_read(app: Backcheck) -> float:
    """Seconds the library takes to read every stored record, a page of 1,000 at a time."""
    started = time.perf_counter()
    start = 1
    while page := app.recorder.select_notifications(start=start, limit=1000):
        start = page[-1].id + 1
    return time.perf_counter() - started


AT_SCALE = 1_000_000


def at_scale(head: int, within: Check) -> Check | None:
    """A target stated at 1M events is judged on a store that large, not on smaller ones."""
    return within if head >= AT_SCALE else None


# A small process that runs the command and says its child's peak memory: the suite itself
# holds the whole application, and a child forked from it counts the suite's resident pages
# in its peak until it execs (ru_maxrss), so a command started from here would seem as large.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}", file=sys.stderr)
"""


def in_a_process(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak resident MB) of a `backcheck` command, started from a small launcher;
    its failure ends the suite."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    *said, last = done.stderr.strip().splitlines() or [""]
    code, _, peak_kb = last.partition(" ")
    if done.returncode != 0 or code != "0":
        raise SystemExit(f"{' '.join(command[1:])} failed ({code}): {' '.join(said)[-500:]}")
    return elapsed, int(peak_kb) / 1024


def store_figures(
    settings: Settings,
    kept: dict[str, object],
    runs: int,
    reads: int,
    seed: int,
    whole_runs: int,
) -> list[Figure]:
    """The figures of one store; those that read the whole store (each in a process of its
    own) `whole_runs` times, the others `runs` times."""
    rng = random.Random(seed)
    # read as at the start of the build's reads, while every candidate's 90-day consent holds
    # (the build ends 120 days of reads later, when they have all lapsed: a read then is
    # refused, recorded all the same, and cheaper than one that answers)
    reading = datetime.fromisoformat(str(kept["clock"])) - timedelta(days=READS_DAYS - 1)
    app = build_app(settings, clock=FakeClock(reading))
    try:
        head = app.recorder.max_notification_id() or 0
        subjects = early_subjects(app, 10)

        per_run = [
            {k: statistics.median(v) for k, v in subject_figures(app, subjects, 1).items()}
            for _ in range(runs)
        ]
        out = [
            Figure(
                f"one subject: {label}",
                "ms",
                [r[key] for r in per_run],
                [r["raw"] for r in per_run],
                "library reading as many events",
                "< 100 ms at 1M events, within 2x of 50k",
                head,
            ).judge(at_scale(head, lambda ms: ms < 100))
            for key, label in (("events", "events --subject"), ("timeline", "audit timeline"))
        ]
        out.append(reads_figure(app, candidates(app), rng, runs, reads, head))
        baseline = [raw_log_read(app) for _ in range(runs)]
    finally:
        app.close()
    env = store_env(settings)
    for name, command, target, within in (
        ("audit verify", ["audit", "verify"], "< 10 s at 1M", at_scale(head, lambda s: s < 10)),
        (
            "audit check",
            ["audit", "check"],
            "< 60 s at 1M, linear from 50k",
            at_scale(head, lambda s: s < 60),
        ),
        ("views rebuild", ["views", "rebuild"], "< 60 s at 1M", at_scale(head, lambda s: s < 60)),
    ):
        timed = [in_a_process([BACKCHECK, *command], env) for _ in range(whole_runs)]
        out.append(
            Figure(
                name,
                "s",
                [t for t, _ in timed],
                baseline,
                "library reading every event",
                target,
                head,
            ).judge(within)
        )
        if name == "audit check":
            out.append(
                Figure(
                    "audit check peak RSS",
                    "MB",
                    [m for _, m in timed],
                    target="< 500 MB",
                    store=head,
                ).judge(lambda mb: mb < 500)
            )
    return out


def reads_figure(
    app: Backcheck, found: list[UUID], rng: random.Random, runs: int, reads: int, head: int
) -> Figure:
    """Random audited profile reads (each decided and recorded) by 8 clients, against the raw
    library's storage part of a read (get the aggregate, save one event) on its own store."""
    picks = [rng.choice(found) for _ in range(reads)]
    ours = profile_read(app)
    ours(picks[0])
    with tempfile.TemporaryDirectory() as tmp:
        raw_app = raw_application(Path(tmp) / "raw.sqlite")
        people = [Person(f"Candidate {i}") for i in range(min(len(found), 1000))]
        raw_app.save(*people)
        raw_picks = [rng.choice(people).id for _ in range(reads)]
        raw = raw_read(raw_app)
        try:
            values, base = repeat(runs, lambda: (run(8, picks, ours), run(8, raw_picks, raw)))
        finally:
            raw_app.close()
    return Figure(
        "audited profile reads, 8 clients",
        "reads/s",
        values,
        base,
        "library get + save",
        ">= 2,000/s",
        head,
        note=f"random reads over {len(found):,} candidates",
    ).judge(lambda r: r >= 2000)


def command_figures(runs: int, commands: int, postgres: str | None) -> list[Figure]:
    out: list[Figure] = []
    for backend, url in (("SQLite", None), ("PostgreSQL", postgres)):
        if backend == "PostgreSQL" and url is None:
            continue
        for writers in (1, 4):
            got: dict[str, tuple[list[float], list[float]]] = {}
            for _ in range(runs):
                with sides(url) as (ours, raw):
                    r, o = one_round(raw, commands, writers), one_round(ours, commands, writers)
                for kind in o:
                    got.setdefault(kind, ([], []))
                    got[kind][0].append(o[kind])
                    got[kind][1].append(r[kind])
            for kind, (values, base) in got.items():
                out.append(
                    Figure(
                        f"commands, {kind}, {backend}, {writers} writer(s)",
                        "events/s",
                        values,
                        base,
                        "raw eventsourcing",
                        ">= 0.8x raw",
                    )
                )
                out[-1].met = out[-1].ratio is not None and out[-1].ratio >= 0.8
    return out


def signing_figure(runs: int, commands: int) -> Figure:
    """Signed commands through the intake (the sender's signing and the intake's check
    included) against unsigned ones, in turns on two stores (bench/intake_signing.py)."""
    rates = signing_measure(runs, commands)
    verified = statistics.median(rates.verified) / statistics.median(rates.unsigned)
    signing, checking = rates.shares()
    figure = Figure(
        "intake, signed commands",
        "commands/s",
        rates.signed,
        rates.unsigned,
        "unsigned intake",
        ">= 0.9x unsigned",
        note=f"SQLite; verifying alone {verified:.2f}x; counted directly, signing "
        f"{signing:.1%} and checking {checking:.1%} of an unsigned command's time",
    )
    figure.met = (figure.ratio or 0) >= 0.9
    return figure


def kafka_figures(runs: int, events: int, lag_seconds: float, lag_rate: float) -> list[Figure]:
    """The relay against a raw producer sending the same messages, and the projection lag."""
    from services.dto import RegisterCandidate

    out = []
    with scratch_store("suite-relay-") as settings:
        app = build_app(settings)
        try:
            for n in range(events):
                app.register_candidate(RegisterCandidate(name=f"Candidate {n}", actor="ats:bench"))
            with running_broker(settings.data_dir) as broker:
                values, base = repeat(
                    runs,
                    lambda: (
                        relay_round(app, settings, broker.bootstrap, events),
                        raw_round(app, settings, broker.bootstrap, events),
                    ),
                )
        finally:
            app.close()
    out.append(Figure("relay", "events/s", values, base, "raw kafka-python", ">= 0.8x raw"))
    out[-1].met = (out[-1].ratio or 0) >= 0.8
    args = argparse.Namespace(
        rate=lag_rate, seconds=lag_seconds, workers=2, partitions=6, writers=4
    )
    p99s = []
    for _ in range(runs):
        with scratch_store("suite-lag-") as settings, running_broker(settings.data_dir) as broker:
            _, _, lags = lag_measure(args, settings, broker)
        p99s.append(percentile(lags, 0.99) * 1000)
    out.append(
        Figure(
            f"projection lag p99 at {lag_rate:.0f} events/s",
            "ms",
            p99s,
            target="<= 1,000 ms at 500 events/s",
        ).judge(lambda ms: ms <= 1000)
    )
    return out


def help_figure(runs: int) -> Figure:
    def timed(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    values, base = repeat(
        runs * 3, lambda: (timed([BACKCHECK, "--help"]), timed([sys.executable, "-c", "pass"]))
    )
    return Figure("backcheck --help", "s", values, base, "python -c pass", "< 0.3 s").judge(
        lambda s: s < 0.3
    )
