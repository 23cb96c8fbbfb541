"""Scheduled duties: when each duty is due, and running it once however many schedulers ask.

A schedule is `every N<unit>` (s, m, h or d), cut into slots aligned to the Unix epoch in UTC:
"every 1h" has a slot at every whole hour, "every 1d" one at each midnight UTC. Every scheduler
computes the same slots from the time alone, with no state of its own, so the slot names the
run: its id is derived from (duty, slot) (`domain/duty.py`). A duty is due when its current slot
has no finished run; slots missed while no scheduler ran are not run one by one afterwards
(each duty sweeps everything due, so one run in the current slot covers them).

Schedulers on several machines share the store and nothing else. Each creates the run it finds
due; the store lets one creation in (the aggregate's first version can be written once), and
the others read the run back and report who holds or finished it instead of running the duty.
A claim holds for a lease; a run still unfinished after it (its holder died) is taken over by
the next scheduler that finds it due, as a new attempt on the same aggregate: see
docs/decisions/0017-scheduled-duties.md for why a lease and why the duties must bear a rerun.

A run that fails (the duty raised) is finished as failed, with the error's class and message:
it is not tried again in the same slot, but the next slot runs it as usual.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.duty import ClaimLostError, DutyRun, Outcome, run_id
from domain.subject import recorded_at
from projections import events as ev
from services.errors import ConcurrentChangeError
from services.unit import Clock, UnitOfWork

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_EVERY = 60  # seconds: a sweep of the whole store more often than each minute is a mistake
MAX_EVERY = 31 * 86400
MIN_LEASE = 60
MAX_LEASE = 7 * 86400
_DURATION = re.compile(r"(\d{1,7})\s*([smhd])")
FORMAT = 'every N<unit>, unit s, m, h or d (e.g. "every 15m", "every 1h", "every 1d"), or "off"'
DUTY_EVENTS = (ev.DutyClaimed, ev.DutyTakenOver, ev.DutyFinished)  # in log order of a run


class ScheduleFormatError(ValueError):
    """A schedule that is not `every N<unit>` within the bounds; the message states the rule."""


@dataclass(frozen=True)
class Every:
    """A schedule: one slot every `seconds`, aligned to the Unix epoch (UTC)."""

    seconds: int

    def slot(self, now: datetime) -> datetime:
        """The start of the slot `now` falls in."""
        elapsed = int((now - EPOCH).total_seconds())
        return EPOCH + timedelta(seconds=elapsed - elapsed % self.seconds)

    def __str__(self) -> str:
        for unit, size in reversed(UNITS.items()):
            if self.seconds % size == 0:
                return f"every {self.seconds // size}{unit}"
        return f"every {self.seconds}s"  # not reached: s divides every whole number


def parse_duration(text: str, minimum: int, maximum: int, rule: str = "N<unit>") -> int:
    """`N<unit>` (s, m, h or d) as seconds, within [minimum, maximum]; ScheduleFormatError
    naming `rule` otherwise."""
    return _seconds(text, text, minimum, maximum, rule)


def parse_every(text: str, minimum: int = MIN_EVERY, maximum: int = MAX_EVERY) -> Every | None:
    """`every N<unit>` as an `Every`, or None for "off"; ScheduleFormatError otherwise."""
    cleaned = text.strip().lower()
    if cleaned == "off":
        return None
    if not cleaned.startswith("every") or cleaned[5:6] not in (" ", "\t"):
        raise ScheduleFormatError(f"{text[:60]!r} is not {FORMAT}")
    return Every(_seconds(cleaned[5:], text, minimum, maximum, FORMAT))


def _seconds(duration: str, given: str, minimum: int, maximum: int, rule: str) -> int:
    """The seconds `duration` (N<unit>) stands for; errors quote what was `given`."""
    found = _DURATION.fullmatch(duration.strip().lower())
    if found is None:
        raise ScheduleFormatError(f"{given[:60]!r} is not {rule}")
    seconds = int(found[1]) * UNITS[found[2]]
    if not minimum <= seconds <= maximum:
        shown = f"{Every(minimum)} to {Every(maximum)}".replace("every ", "")
        raise ScheduleFormatError(f"{given[:60]!r} is outside {shown}")
    return seconds


Counts = dict[str, int]


@dataclass(frozen=True)
class ScheduledDuty:
    """A duty, its schedule, and what running it is: a call that returns what it did."""

    name: str
    every: Every
    run: Callable[[], Counts]


class Status(StrEnum):
    RAN = "ran"  # this scheduler ran it, and it succeeded
    FAILED = "failed"  # this scheduler ran it, and it raised
    DONE = "done"  # another scheduler finished it in this slot (or this one did, earlier)
    HELD = "held"  # another scheduler holds it, its lease not yet ended
    LOST = "lost"  # this scheduler ran it but was taken over before it could record the end


@dataclass(frozen=True)
class RunReport:
    """What one scheduler did about one due duty."""

    duty: str
    slot: datetime
    run_id: UUID
    status: Status
    runner: str  # who ran or holds it: this scheduler for ran/failed/lost, else the other
    attempt: int
    counts: Counts = field(default_factory=dict)
    detail: str = ""

    def describe(self) -> str:
        """One line for the scheduler's output."""
        what = f"{self.duty} (slot {self.slot:%Y-%m-%dT%H:%M:%SZ}, run {self.run_id})"
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items()) or "nothing to do"
        return {
            Status.RAN: f"{what}: ran, attempt {self.attempt}: {counts}",
            Status.FAILED: f"{what}: FAILED, attempt {self.attempt}: {self.detail}",
            Status.DONE: f"{what}: already done by {self.runner}",
            Status.HELD: f"{what}: being run by {self.runner} ({self.detail})",
            Status.LOST: f"{what}: ran, but {self.detail}",
        }[self.status]


class DutyScheduler:
    """Runs the duties due now on the application's store, each once across every scheduler
    on that store. `runner` names this scheduler in the records (host and instance)."""

    def __init__(
        self,
        app: UnitOfWork,
        duties: list[ScheduledDuty],
        runner: str,
        lease: timedelta,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self.duties = duties
        self.runner = runner
        self.lease = lease
        self.clock = clock or app.clock

    def run_due(self, stopping: Callable[[], bool] = lambda: False) -> list[RunReport]:
        """Each duty due now, in order: claimed and run, or reported as another's. Stops
        before the next duty once `stopping()` says so."""
        reports = []
        for duty in self.duties:
            if stopping():
                break
            reports.append(self.run_one(duty))
        return reports

    def run_one(self, duty: ScheduledDuty) -> RunReport:
        now = self.clock()
        slot = duty.every.slot(now)
        claimed = self._claim(duty.name, slot, now)
        if isinstance(claimed, RunReport):
            return claimed
        try:
            counts, outcome, detail = duty.run(), Outcome.SUCCEEDED, ""
        except Exception as e:  # recorded as the run's outcome; the next slot runs it again
            error = " ".join(str(e).split())  # one line, as the record and the output show it
            counts, outcome, detail = {}, Outcome.FAILED, f"{type(e).__name__}: {error}"
        return self._finish(claimed, outcome, counts, detail)

    def _claim(self, duty: str, slot: datetime, now: datetime) -> DutyRun | RunReport:
        """The run, claimed or taken over by this scheduler; or what another has of it."""
        with recorded_at(now):
            if not self.app.exists(run_id(duty, slot)):
                run = DutyRun.claim(duty, slot, self.runner, now, self.lease)
                try:
                    self.app.commit(run)
                    return run
                except ConcurrentChangeError:
                    pass  # another scheduler created it first: see what it is at
            run = self.app.load(DutyRun, run_id(duty, slot))
            if run.finished:
                return self._report(run, Status.DONE)
            if run.held_at(now):
                until = run.lease_until.astimezone(UTC)
                held = f"attempt {run.attempt}, held until {until:%Y-%m-%dT%H:%M:%SZ}"
                return self._report(run, Status.HELD, held)
            run.take_over(self.runner, now, self.lease)
            try:
                self.app.commit(run)
                return run
            except ConcurrentChangeError:  # another took it over at the same moment
                again = self.app.load(DutyRun, run.id)
                status = Status.DONE if again.finished else Status.HELD
                return self._report(again, status, f"taken over at attempt {again.attempt}")

    def _finish(self, run: DutyRun, outcome: str, counts: Counts, detail: str) -> RunReport:
        attempt = run.attempt
        now = self.clock()
        with recorded_at(now):
            try:
                run.finish(self.runner, attempt, now, outcome, counts, detail)
                self.app.commit(run)
            except ConcurrentChangeError:  # taken over while this attempt ran
                again = self.app.load(DutyRun, run.id)
                lost = ClaimLostError(run.id, attempt, self.runner, again.attempt, again.runner)
                return self._report(run, Status.LOST, str(lost), counts)
        status = Status.RAN if outcome == Outcome.SUCCEEDED else Status.FAILED
        return self._report(run, status, detail, counts)

    @staticmethod
    def _report(
        run: DutyRun, status: Status, detail: str = "", counts: Counts | None = None
    ) -> RunReport:
        return RunReport(
            duty=run.duty,
            slot=run.slot,
            run_id=run.id,
            status=status,
            runner=run.runner,
            attempt=run.attempt,
            counts=run.counts if counts is None else counts,
            detail=detail or run.detail,
        )


@dataclass(frozen=True)
class RecordedRun:
    """One run as the store holds it: every attempt's runner, and its end."""

    run_id: UUID
    duty: str
    slot: datetime
    runners: list[str]
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    counts: Counts
    detail: str


def recorded_runs(app: UnitOfWork, start: int = 1) -> Iterator[RecordedRun]:
    """Every run recorded in the store from log position `start`, rebuilt from its events
    alone (what an auditor replays), in the order the runs were first claimed."""
    topics = [f"{cls.__module__}:{cls.__qualname__}" for cls in DUTY_EVENTS]
    runs: dict[UUID, RecordedRun] = {}
    while page := app.recorder.select_notifications(start=start, limit=500, topics=topics):
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            runs[event.originator_id] = _applied(runs.get(event.originator_id), event)
        start = page[-1].id + 1
    yield from runs.values()


def _applied(run: RecordedRun | None, event: Any) -> RecordedRun:
    """The run after one of its events (the store keeps each run's events in order, its
    claim first)."""
    kind = type(event)  # compared, not narrowed: the classes are typed as any event
    if kind is ev.DutyClaimed or run is None:
        return RecordedRun(
            event.originator_id,
            event.duty,
            event.slot,
            [event.runner],
            event.claimed_at,
            None,
            None,
            {},
            "",
        )
    if kind is ev.DutyTakenOver:
        return replace(
            run,
            runners=[*run.runners, event.runner],
            started_at=event.taken_at,
        )
    return replace(
        run,
        finished_at=event.finished_at,
        outcome=event.outcome,
        counts=dict(event.counts),
        detail=event.detail,
    )
