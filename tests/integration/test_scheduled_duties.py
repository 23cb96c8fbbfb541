"""Scheduled duties on a real store (SQLite and PostgreSQL): schedulers started together run
each due duty exactly once, every run is recorded and replays, and a winner that died is taken
over once its lease has ended."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from eventsourcing.utils import get_topic

from domain.duty import DutyRun, Outcome
from infra.audit.trail import key_pair
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.scheduling import duty_scheduler
from projections import events as ev
from services.application import Backcheck
from services.consent_expiry import ExpireDueConsents
from services.dto import WithdrawConsent
from services.errors import ConcurrentChangeError
from services.schedule import (
    DutyScheduler,
    Every,
    RunReport,
    ScheduledDuty,
    Status,
    recorded_runs,
)
from tests import story
from tests.conftest import FakeClock
from tests.scheduling import claim_and_hang, schedule_in_a_process

DUTIES = ["retention", "consent-expiry", "checkpoint"]


def stored(app: Backcheck) -> Counter[str]:
    """How many events of each type the store holds, by `Aggregate.Event`."""
    return Counter(type(e).__qualname__ for _, e in app.replay())


def shredded_tiers(app: Backcheck) -> list[tuple[object, str]]:
    return [(e.candidate_id, e.tier) for _, e in app.replay() if type(e) is ev.TierShredded]


def test_two_schedulers_in_two_processes_started_together_run_each_due_duty_exactly_once(
    settings: Settings,
) -> None:
    """Given a store with a consent past its window, a candidate quiet for longer than
    retention and a checkpoint key; when two scheduler processes reach a barrier and run what is
    due at the same moment; then each duty ran in one of them alone, the other saw it held or
    done, and the store holds one run per duty and each duty's effect once."""
    key_pair(settings.keys_dir)
    app = build_app(settings, clock=FakeClock(story.NOW))
    try:
        story.register(app, "Han Meimei")  # quiet from NOW: general tier due after 730 days
        story.investigation_under_way(app)  # its consent ends NOW + 90 days
    finally:
        app.close()
    at = story.NOW + timedelta(days=800)
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(2), spawn.Queue()
    processes = [
        spawn.Process(target=schedule_in_a_process, args=(settings, name, at, start, results))
        for name in ("scheduler-one", "scheduler-two")
    ]
    for p in processes:
        p.start()
    got = [results.get(timeout=180) for _ in processes]
    for p in processes:
        p.join(30)

    assert [kind for kind, _, _ in got] == ["ok", "ok"], got
    reports = [report for _, _, reports in got for report in reports]
    for duty in DUTIES:
        statuses = sorted(status for d, status, _, _ in reports if d == duty)
        assert statuses.count("ran") == 1, (duty, reports)
        assert set(statuses) - {"ran"} <= {"held", "done"}, (duty, reports)
        winners = {runner for d, status, runner, _ in reports if d == duty}
        assert len(winners) == 1, (duty, reports)  # the others name the one that ran it
    app = build_app(settings, clock=FakeClock(at))
    try:
        counted = stored(app)
        assert counted["DutyRun.Claimed"] == 3
        assert counted["DutyRun.Finished"] == 3
        assert counted["DutyRun.TakenOver"] == 0
        assert counted["Consent.Expired"] == 1
        tiers = shredded_tiers(app)
        assert tiers
        assert len(tiers) == len(set(tiers))  # each tier shredded once
        runs = {run.duty: run for run in recorded_runs(app)}
        assert sorted(runs) == sorted(DUTIES)
        assert all(run.outcome == Outcome.SUCCEEDED for run in runs.values())
        assert {len(run.runners) for run in runs.values()} == {1}
        assert runs["consent-expiry"].counts["expired"] == 1
        assert runs["retention"].counts["shredded"] == len(tiers)
        assert runs["retention"].slot == at.replace(hour=0)  # every 1d: midnight UTC
        assert runs["consent-expiry"].slot == runs["checkpoint"].slot == at  # a whole hour
    finally:
        app.close()
    with open_source(settings) as source:
        assert verify(source).intact


def test_the_run_records_replay_to_what_each_scheduler_reported(
    settings: Settings, clock: FakeClock
) -> None:
    """Every run is recorded as events (duty, slot, runner, started, finished, outcome,
    counts): replayed from the log alone, they tell what the schedulers said; a second
    scheduler in the same slot runs nothing and names who did."""
    key_pair(settings.keys_dir)
    one, two = (build_app(settings, clock=clock) for _ in range(2))
    try:
        first = duty_scheduler(one, settings.model_copy(update={"scheduler_id": "host-a:1"}))
        second = duty_scheduler(two, settings.model_copy(update={"scheduler_id": "host-b:2"}))
        ran = first.run_due()
        seen = second.run_due()
        clock.advance(days=1)  # every duty's next slot
        ran_next = second.run_due()

        assert [r.status for r in ran] == [Status.RAN] * 3
        assert [(r.status, r.runner) for r in seen] == [(Status.DONE, "host-a:1")] * 3
        assert [(r.status, r.runner) for r in ran_next] == [(Status.RAN, "host-b:2")] * 3
        replayed = list(recorded_runs(one))
        assert [(r.run_id, r.duty, r.slot, r.runners, r.counts) for r in replayed] == [
            (r.run_id, r.duty, r.slot, [r.runner], r.counts) for r in [*ran, *ran_next]
        ]
        assert [(r.started_at, r.finished_at) for r in replayed] == [
            *[(story.NOW, story.NOW)] * 3,
            *[(story.NOW + timedelta(days=1), story.NOW + timedelta(days=1))] * 3,
        ]
        assert {r.outcome for r in replayed} == {Outcome.SUCCEEDED}
        assert replayed[0].slot == story.NOW.replace(hour=0)  # every 1d: at midnight UTC
    finally:
        one.close()
        two.close()


def test_a_winner_that_died_mid_run_is_taken_over_once_its_lease_has_ended(
    settings: Settings,
) -> None:
    """Given a scheduler process that claimed the checkpoint run and was killed in it; then
    another scheduler leaves the run alone while the lease holds, takes it over (attempt 2)
    once it has ended, and the record names both."""
    key_pair(settings.keys_dir)
    at = story.NOW + timedelta(minutes=10)
    lease = timedelta(minutes=5)
    build_app(settings).close()  # the store and its tables, before two processes use them
    spawn = multiprocessing.get_context("spawn")
    claimed = spawn.Event()
    dying = spawn.Process(target=claim_and_hang, args=(settings, "host-a:1", at, lease, claimed))
    dying.start()
    try:
        assert claimed.wait(120), "the first scheduler never claimed the run"
    finally:
        dying.kill()
        dying.join(30)
    clock = FakeClock(at)
    app = build_app(settings, clock=clock)
    try:
        taker = duty_scheduler(
            app,
            settings.model_copy(
                update={"scheduler_id": "host-b:2", "schedules": {"checkpoint": 3600}}
            ),
        )
        taker.lease = lease
        assert [(r.status, r.runner) for r in taker.run_due()] == [(Status.HELD, "host-a:1")]
        clock.advance(minutes=5)  # the lease has ended; the slot has not
        [report] = taker.run_due()
        assert (report.status, report.runner, report.attempt) == (Status.RAN, "host-b:2", 2)
        [run] = recorded_runs(app)
        assert run.runners == ["host-a:1", "host-b:2"]
        assert run.outcome == Outcome.SUCCEEDED
        assert run.counts["position"] > 0
        assert [(r.status, r.runner) for r in taker.run_due()] == [(Status.DONE, "host-b:2")]
    finally:
        app.close()


def test_a_slow_holder_taken_over_cannot_record_its_end_over_the_takers(
    settings: Settings, clock: FakeClock
) -> None:
    """A holder still running when its lease ends is taken over; when it comes to record its
    end, it is told it lost the run, and the record stays the taker's."""
    lease = timedelta(minutes=5)
    one, two = (build_app(settings, clock=clock) for _ in range(2))
    try:
        taker_said = []

        def taker_duty() -> dict[str, int]:
            return {"swept": 2}

        taker = DutyScheduler(
            two, [ScheduledDuty("consent-expiry", Every(3600), taker_duty)], "host-b:2", lease
        )

        def slow_duty() -> dict[str, int]:
            clock.advance(minutes=6)  # the lease ends while this one still runs
            taker_said.extend(taker.run_due())
            return {"swept": 1}

        slow = DutyScheduler(
            one, [ScheduledDuty("consent-expiry", Every(3600), slow_duty)], "host-a:1", lease
        )
        [lost] = slow.run_due()

        assert [(r.status, r.runner, r.attempt) for r in taker_said] == [
            (Status.RAN, "host-b:2", 2)
        ]
        assert (lost.status, lost.attempt) == (Status.LOST, 1)
        assert "taken over by host-b:2 (attempt 2)" in lost.detail
        [run] = recorded_runs(one)
        assert (run.runners, run.counts) == (["host-a:1", "host-b:2"], {"swept": 2})
        topics = [n.topic for n in one.recorder.select_notifications(start=1, limit=100)]
        assert topics.count(get_topic(ev.DutyFinished)) == 1
    finally:
        one.close()
        two.close()


def test_a_duty_that_fails_is_recorded_as_failed_and_runs_again_in_its_next_slot(
    settings: Settings, clock: FakeClock
) -> None:
    """No checkpoint key: the checkpoint run fails, recorded with the error; once the key is
    made, the next slot's run succeeds."""
    app = build_app(settings, clock=clock)
    try:
        only_checkpoints = settings.model_copy(
            update={"scheduler_id": "host-a:1", "schedules": {"checkpoint": 3600}}
        )
        scheduler = duty_scheduler(app, only_checkpoints)
        [failed] = scheduler.run_due()
        assert failed.status is Status.FAILED
        assert failed.detail.startswith("CheckpointError: no signing key at ")
        assert [r.status for r in scheduler.run_due()] == [Status.DONE]  # not again this slot
        key_pair(settings.keys_dir)
        clock.advance(hours=1)
        assert [r.status for r in scheduler.run_due()] == [Status.RAN]
        assert [r.outcome for r in recorded_runs(app)] == [Outcome.FAILED, Outcome.SUCCEEDED]
    finally:
        app.close()


def test_the_store_refuses_a_second_claim_of_the_same_duty_in_the_same_slot(
    settings: Settings, clock: FakeClock
) -> None:
    """What decides between schedulers: the run's id is derived from (duty, slot), and the
    store writes its first version once."""
    one, two = (build_app(settings, clock=clock) for _ in range(2))
    try:
        slot = Every(3600).slot(clock())
        one.commit(DutyRun.claim("retention", slot, "host-a:1", clock(), timedelta(hours=1)))
        second = DutyRun.claim("retention", slot, "host-b:2", clock(), timedelta(hours=1))

        with pytest.raises(ConcurrentChangeError):
            two.commit(second)
        assert two.load(DutyRun, second.id).runner == "host-a:1"
    finally:
        one.close()
        two.close()


def test_schedulers_in_threads_at_a_barrier_run_each_duty_once_in_every_slot(
    settings: Settings, clock: FakeClock
) -> None:
    """Three schedulers, each on its own connections to one store, released together in each
    of five slots: every duty's action is called once per slot, whoever wins."""
    schedulers, rounds = 3, 5
    calls: Counter[tuple[str, object]] = Counter()
    counting = threading.Lock()

    def action(duty: str) -> Callable[[], dict[str, int]]:
        def run() -> dict[str, int]:
            with counting:
                calls[(duty, Every(3600).slot(clock()))] += 1
            return {"calls": 1}

        return run

    apps = [build_app(settings, clock=clock) for _ in range(schedulers)]
    reports: list[list[RunReport]] = [[] for _ in apps]
    errors: list[str] = []
    start = threading.Barrier(schedulers + 1)
    done = threading.Barrier(schedulers + 1)

    def schedule(n: int) -> None:
        duties = [ScheduledDuty(d, Every(3600), action(d)) for d in DUTIES]
        scheduler = DutyScheduler(apps[n], duties, f"host-{n}:1", timedelta(hours=1))
        for _ in range(rounds):
            start.wait(60)
            try:
                reports[n].extend(scheduler.run_due())
            except Exception as e:  # reported to the test, which fails on it
                errors.append(repr(e))
            done.wait(60)

    threads = [threading.Thread(target=schedule, args=(n,)) for n in range(schedulers)]
    try:
        for t in threads:
            t.start()
        for _ in range(rounds):
            start.wait(60)
            done.wait(60)
            clock.advance(hours=1)
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(calls) == rounds * len(DUTIES)
        assert set(calls.values()) == {1}
        statuses = Counter(r.status for rs in reports for r in rs)
        assert statuses[Status.RAN] == rounds * len(DUTIES)
        assert statuses[Status.RAN] + statuses[Status.DONE] + statuses[Status.HELD] == (
            schedulers * rounds * len(DUTIES)
        )
        runs = list(recorded_runs(apps[0]))
        assert len(runs) == rounds * len(DUTIES)
        assert {(len(r.runners), r.outcome) for r in runs} == {(1, Outcome.SUCCEEDED)}
    finally:
        for app in apps:
            app.close()


def test_the_consent_expiry_sweep_records_each_ended_consent_once_and_suspends_its_work(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    try:
        under_way = story.investigation_under_way(app, "Li Lei")
        withdrawn = story.consented_candidate(app, "Han Meimei")
        app.withdraw_consent(
            WithdrawConsent(consent_id=withdrawn.consent_id, reason="no", actor=story.CANDIDATE)
        )
        clock.advance(days=story.VALID_FOR.days - 1)
        assert app.consents_due_to_expire(clock()) == []
        clock.advance(days=1)

        dry = app.expire_due_consents(ExpireDueConsents(dry_run=True))
        assert (dry.expired, dry.consent_ids) == (1, [under_way.consent_id])
        assert stored(app)["Consent.Expired"] == 0
        swept = app.expire_due_consents(ExpireDueConsents())

        assert (swept.expired, swept.skipped, swept.suspended_investigations) == (1, 0, 1)
        assert app.get_consent(under_way.consent_id).status == "expired"
        assert app.expire_due_consents(ExpireDueConsents()).expired == 0  # once
        assert stored(app)["Consent.Expired"] == 1
        assert stored(app)["Investigation.Suspended"] == 1
    finally:
        app.close()
