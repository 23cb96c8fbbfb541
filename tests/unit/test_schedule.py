"""The schedule format and its slots, and the rules of a duty run, without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.duty import ClaimLostError, DutyRun, LeaseHeldError, RunFinishedError, run_id
from domain.errors import InvalidInputError
from services.schedule import Every, ScheduleFormatError, parse_duration, parse_every

AT = datetime(2026, 12, 3, 22, 17, 41, tzinfo=UTC)
LEASE = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("every 1m", 60),
        ("every 15m", 900),
        ("every 1h", 3600),
        ("Every 2H", 7200),
        ("  every 1d ", 86400),
        ("every 90 s", 90),
        ("every 31d", 31 * 86400),
    ],
)
def test_a_schedule_is_every_n_units(text: str, seconds: int) -> None:
    assert parse_every(text) == Every(seconds)


def test_off_turns_a_duty_off() -> None:
    assert parse_every("off") is None
    assert parse_every(" OFF ") is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("hourly", "'hourly' is not every N<unit>"),
        ("1h", "'1h' is not every N<unit>"),
        ("every", "'every' is not every N<unit>"),
        ("every 1w", "'every 1w' is not every N<unit>"),
        ("every -1h", "'every -1h' is not every N<unit>"),
        ("every 1.5h", "'every 1.5h' is not every N<unit>"),
        ("every 99999999h", "is not every N<unit>"),  # over 7 digits: refused before arithmetic
        ("every 59s", "'every 59s' is outside 1m to 31d"),
        ("every 0m", "'every 0m' is outside 1m to 31d"),
        ("every 32d", "'every 32d' is outside 1m to 31d"),
        ("everyday", "is not every N<unit>"),
        ("x" * 500, "is not every N<unit>"),
    ],
)
def test_a_schedule_outside_the_format_or_its_bounds_is_refused_naming_the_rule(
    text: str, said: str
) -> None:
    with pytest.raises(ScheduleFormatError) as refused:
        parse_every(text)
    assert said in str(refused.value)
    assert len(str(refused.value)) < 200  # what was given is quoted, bounded


def test_a_lease_is_a_bounded_duration() -> None:
    assert parse_duration("45m", 60, 7 * 86400) == 2700
    with pytest.raises(ScheduleFormatError, match="'8d' is outside 1m to 7d"):
        parse_duration("8d", 60, 7 * 86400)
    with pytest.raises(ScheduleFormatError, match="'every 1h' is not N<unit>"):
        parse_duration("every 1h", 60, 7 * 86400)


def test_slots_are_aligned_to_the_epoch_in_utc_whatever_the_offset_of_the_moment() -> None:
    shanghai = AT.astimezone(timezone(timedelta(hours=8)))
    assert Every(3600).slot(AT) == Every(3600).slot(shanghai) == AT.replace(minute=0, second=0)
    assert Every(86400).slot(AT) == datetime(2026, 12, 3, tzinfo=UTC)
    assert Every(900).slot(AT) == datetime(2026, 12, 3, 22, 15, tzinfo=UTC)
    assert Every(900).slot(datetime(2026, 12, 3, 22, 15, tzinfo=UTC)) == datetime(
        2026, 12, 3, 22, 15, tzinfo=UTC
    )  # a slot's first moment is in it
    assert str(Every(900)) == "every 15m"
    assert str(Every(86400 * 2)) == "every 2d"
    assert str(Every(90)) == "every 90s"


def test_a_runs_id_is_the_same_for_the_same_duty_and_slot_and_differs_otherwise() -> None:
    slot = Every(3600).slot(AT)
    assert run_id("retention", slot) == run_id("retention", Every(3600).slot(AT + LEASE))
    assert run_id("retention", slot) != run_id("checkpoint", slot)
    assert run_id("retention", slot) != run_id("retention", slot + timedelta(hours=1))
    assert DutyRun.claim("retention", slot, "a:1", AT, LEASE).id == run_id("retention", slot)


def test_a_run_is_taken_over_only_once_its_lease_has_ended_and_only_while_unfinished() -> None:
    run = DutyRun.claim("retention", AT, "a:1", AT, LEASE)
    with pytest.raises(LeaseHeldError, match="held by a:1 until"):
        run.take_over("b:2", AT + LEASE - timedelta(seconds=1), LEASE)
    assert run.held_at(AT + LEASE - timedelta(seconds=1))
    assert not run.held_at(AT + LEASE)

    run.take_over("b:2", AT + LEASE, LEASE)

    assert (run.runner, run.attempt, run.lease_until) == ("b:2", 2, AT + 2 * LEASE)
    run.finish("b:2", 2, AT + LEASE + timedelta(minutes=1), "succeeded", {"shredded": 1})
    assert not run.held_at(AT + LEASE)  # a finished run holds nothing
    with pytest.raises(RunFinishedError):
        run.take_over("c:3", AT + 9 * LEASE, LEASE)
    with pytest.raises(RunFinishedError):
        run.finish("b:2", 2, AT + 9 * LEASE, "succeeded", {})


def test_only_the_current_attempts_runner_records_the_end() -> None:
    run = DutyRun.claim("checkpoint", AT, "a:1", AT, LEASE)
    run.take_over("b:2", AT + LEASE, LEASE)

    with pytest.raises(ClaimLostError, match="taken over by b:2 \\(attempt 2\\)"):
        run.finish("a:1", 1, AT + LEASE, "succeeded", {})
    with pytest.raises(ClaimLostError):
        run.finish("a:1", 2, AT + LEASE, "succeeded", {})  # the attempt, and who holds it


@pytest.mark.parametrize(
    ("counts", "outcome"),
    [
        ({"x" * 41: 1}, "succeeded"),
        ({"shredded": -1}, "succeeded"),
        ({f"c{i}": 1 for i in range(21)}, "succeeded"),
        ({}, "partly"),
    ],
)
def test_a_runs_end_is_bounded(counts: dict[str, int], outcome: str) -> None:
    run = DutyRun.claim("checkpoint", AT, "a:1", AT, LEASE)
    with pytest.raises(InvalidInputError):
        run.finish("a:1", 1, AT, outcome, counts)


def test_a_long_error_is_kept_to_its_first_500_characters() -> None:
    run = DutyRun.claim("checkpoint", AT, "a:1", AT, LEASE)
    run.finish("a:1", 1, AT, "failed", {}, "E" * 5000)
    assert run.detail == "E" * 500


@pytest.mark.parametrize(
    ("duty", "runner", "slot"),
    [
        ("", "a:1", AT),
        ("retention", "", AT),
        ("retention", "a\n1", AT),
        ("r" * 41, "a:1", AT),
        ("retention", "a" * 201, AT),
        ("retention", "a:1", AT.replace(tzinfo=None)),
    ],
)
def test_a_claim_names_its_duty_runner_and_an_aware_slot(
    duty: str, runner: str, slot: datetime
) -> None:
    with pytest.raises(InvalidInputError):
        DutyRun.claim(duty, slot, runner, AT, LEASE)
