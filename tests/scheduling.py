"""Schedulers in a process of their own, on the same store as the test (multiprocessing,
spawn): as schedulers on two machines would be."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as EventFlag

from infra.bootstrap import build_app
from infra.config import Settings
from infra.scheduling import duty_scheduler
from services.schedule import DutyScheduler, Every, ScheduledDuty


def schedule_in_a_process(
    settings: Settings,
    runner: str,
    at: datetime,
    start: Barrier,
    results: Queue[tuple[str, str, list[tuple[str, str, str, int]]]],
) -> None:
    """One scheduler named `runner`, its clock stopped at `at`, running what is due once
    every process has reached the barrier; puts ("ok", runner, [(duty, status, runner,
    attempt)]) or ("error", runner, what went wrong) on `results`."""
    app = build_app(settings, clock=lambda: at)
    try:
        scheduler = duty_scheduler(app, settings.model_copy(update={"scheduler_id": runner}))
        start.wait(60)
        reports = scheduler.run_due()
        results.put(
            ("ok", runner, [(r.duty, r.status.value, r.runner, r.attempt) for r in reports])
        )
    except Exception as error:  # reported to the test, which fails on it
        results.put(("error", runner, [(repr(error), "", "", 0)]))
    finally:
        app.close()


def claim_and_hang(
    settings: Settings, runner: str, at: datetime, lease: timedelta, claimed: EventFlag
) -> None:
    """A scheduler that claims the checkpoint run due at `at` and then hangs in it until the
    test kills the process: a winner that died mid-run."""

    def hang() -> dict[str, int]:
        claimed.set()
        time.sleep(600)
        return {}

    app = build_app(settings, clock=lambda: at)
    scheduler = DutyScheduler(app, [ScheduledDuty("checkpoint", Every(3600), hang)], runner, lease)
    scheduler.run_due()
