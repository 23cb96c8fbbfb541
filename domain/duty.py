"""Duty runs: one scheduled run of a duty (retention, consent expiry, a signed checkpoint) in
one slot of its schedule, as the audit trail keeps it.

A run is recorded before the duty starts (claimed: by which scheduler, when, until when its
claim holds) and when it ends (finished: the outcome and what it did, as counts). Its id is
derived from the duty and the slot, so every scheduler that finds the same duty due in the same
slot creates the same aggregate: the store lets one of those creations in and refuses the others
(optimistic concurrency on version 1), and the refused ones read who won instead of running.

A winner that dies mid-run leaves a claim that is never finished. A claim holds until its
lease ends; after that, another scheduler may take the run over (a new attempt, the next
version of the same aggregate, so two takers collide in the store exactly like two claimers).
A holder that was only slow finds, when it comes to record its end, that its attempt is no
longer the run's: its finish is refused (`ClaimLostError`), and the run's record stays the
taker's. The duties are written to be run again safely (each finishes what an earlier, cut-off
run left), so the rare double run a takeover allows changes nothing twice.

A run is about no data subject: it holds counts and ids of no one, never a personal value.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidInputError, RuleBrokenError
from domain.subject import RecordedAggregate

# Fixed for ever: the ids of runs already recorded are derived from it.
DUTY_NAMESPACE = UUID("3f6f0c52-88a1-4d0e-b7c5-2a9d41e6c7b8")
MAX_DUTY = 40
MAX_RUNNER = 200
MAX_DETAIL = 500
MAX_COUNTS = 20


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def run_id(duty: str, slot: datetime) -> UUID:
    """The one id the run of `duty` in the slot starting at `slot` is stored under: the same
    for every scheduler, different for any other duty or slot."""
    return uuid5(DUTY_NAMESPACE, f"{duty}@{slot.isoformat()}")


class LeaseHeldError(RuleBrokenError):
    """A run is taken over only once its holder's lease has ended."""

    def __init__(self, run: UUID, runner: str, lease_until: datetime) -> None:
        super().__init__(
            f"run {run} is held by {runner} until {lease_until.isoformat()}; it may be taken "
            "over only after that",
            run=run,
        )


class RunFinishedError(RuleBrokenError):
    """A finished run is never claimed, taken over or finished again."""

    def __init__(self, run: UUID, runner: str) -> None:
        super().__init__(f"run {run} was finished by {runner} already", run=run)


class ClaimLostError(RuleBrokenError):
    """Only the holder of a run's current attempt records its end."""

    def __init__(self, run: UUID, attempt: int, runner: str, current: int, holder: str) -> None:
        super().__init__(
            f"attempt {attempt} of run {run} by {runner} is no longer the run's: it was taken "
            f"over by {holder} (attempt {current}) after its lease ended",
            run=run,
        )


def _check_text(name: str, value: str, limit: int) -> None:
    if not value.strip() or len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidInputError(
            f"field {name!r}: 1 to {limit} characters, no control characters", field=name
        )


def _check_counts(counts: dict[str, int]) -> None:
    if len(counts) > MAX_COUNTS:
        raise InvalidInputError(f"field 'counts': at most {MAX_COUNTS} counts", field="counts")
    for name, value in counts.items():
        _check_text("counts", name, MAX_DUTY)
        if not isinstance(value, int) or value < 0:
            raise InvalidInputError("field 'counts': whole numbers of at least 0", field="counts")


class DutyRun(RecordedAggregate):
    @classmethod
    def claim(
        cls, duty: str, slot: datetime, runner: str, now: datetime, lease: timedelta
    ) -> DutyRun:
        """The first attempt at the run of `duty` in `slot`, held by `runner` until
        `now + lease`."""
        _check_text("duty", duty, MAX_DUTY)
        _check_text("runner", runner, MAX_RUNNER)
        if slot.tzinfo is None or now.tzinfo is None:
            raise InvalidInputError("field 'slot': a time with its UTC offset", field="slot")
        return cls._create(
            cls.Claimed,  # type: ignore[attr-defined]
            duty=duty,
            slot=slot,
            runner=runner,
            claimed_at=now,
            lease_until=now + lease,
        )

    @staticmethod
    def create_id(duty: str, slot: datetime, **_: Any) -> UUID:
        return run_id(duty, slot)

    @event("Claimed")
    def __init__(
        self, duty: str, slot: datetime, runner: str, claimed_at: datetime, lease_until: datetime
    ) -> None:
        self.duty = duty
        self.slot = slot
        self.runner = runner
        self.attempt = 1
        self.started_at = claimed_at
        self.lease_until = lease_until
        self.finished_at: datetime | None = None
        self.outcome: str | None = None
        self.counts: dict[str, int] = {}
        self.detail = ""

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def held_at(self, now: datetime) -> bool:
        """Whether the current attempt's lease still holds at `now` (a finished run holds
        nothing)."""
        return not self.finished and now < self.lease_until

    def take_over(self, runner: str, now: datetime, lease: timedelta) -> None:
        """A new attempt by `runner`, once the last one's lease has ended unfinished."""
        _check_text("runner", runner, MAX_RUNNER)
        if self.finished:
            raise RunFinishedError(self.id, self.runner)
        if now < self.lease_until:
            raise LeaseHeldError(self.id, self.runner, self.lease_until)
        self._taken_over(
            runner=runner,
            previous_runner=self.runner,
            attempt=self.attempt + 1,
            taken_at=now,
            lease_until=now + lease,
        )

    @event("TakenOver")
    def _taken_over(
        self,
        runner: str,
        previous_runner: str,
        attempt: int,
        taken_at: datetime,
        lease_until: datetime,
    ) -> None:
        self.runner = runner
        self.attempt = attempt
        self.started_at = taken_at
        self.lease_until = lease_until

    def finish(
        self,
        runner: str,
        attempt: int,
        now: datetime,
        outcome: str,
        counts: dict[str, int],
        detail: str = "",
    ) -> None:
        """The end of `runner`'s attempt: what it did (counts) or why it failed (detail)."""
        if self.finished:
            raise RunFinishedError(self.id, self.runner)
        if attempt != self.attempt or runner != self.runner:
            raise ClaimLostError(self.id, attempt, runner, self.attempt, self.runner)
        if outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
            raise InvalidInputError("field 'outcome': succeeded or failed", field="outcome")
        _check_counts(counts)
        self._finished(
            runner=runner,
            attempt=attempt,
            finished_at=now,
            outcome=outcome,
            counts=dict(counts),
            detail=detail[:MAX_DETAIL],
        )

    @event("Finished")
    def _finished(
        self,
        runner: str,
        attempt: int,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
        detail: str,
    ) -> None:
        self.finished_at = finished_at
        self.outcome = outcome
        self.counts = counts
        self.detail = detail
