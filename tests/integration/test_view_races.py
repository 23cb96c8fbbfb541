"""Two runners on one set of views (two processes on one store): a run that overlaps what the
other applied meanwhile is refused whole and taken up from where the other got to, so no event
is applied twice (seen by the fault suite: a candidate's claims listed twice)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.runner import ViewRunner
from services.application import Backcheck
from services.dto import ClaimIn, PersonalFieldIn, SubmitClaims
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_views import reference, runner_of


def test_a_runner_whose_run_another_applied_in_part_meanwhile_applies_nothing_twice(
    settings: Settings, clock: FakeClock
) -> None:
    first, second = build_app(settings, clock=clock), build_app(settings, clock=clock)
    try:
        candidate = s.register(first)
        runner_of(first).catch_up()
        runner_of(second).catch_up()
        for school in ("Fudan", "Tsinghua", "Zhejiang", "Nanjing", "Wuhan", "Xiamen"):
            submit_claim(first, candidate, school)  # each adds a claim to the profile row
        # written by one process, unseen by the other's views
        behind = runner_of(second)
        start = behind.position
        raced = racing(behind, runner_of(first), through=start + 5)

        behind.catch_up()

        assert raced == [start + 5]  # the other runner applied part of the range first
        assert behind.store.dump() == reference(first)
        assert behind.position == first.recorder.max_notification_id()
    finally:
        first.close()
        second.close()


def submit_claim(app: Backcheck, candidate: UUID, school: str) -> None:
    field = PersonalFieldIn(name="school", category="user.education", value=school)
    app.submit_claims(
        SubmitClaims(
            candidate_id=candidate,
            claims=[ClaimIn(kind="education", fields=[field])],
            actor=s.RECRUITER,
        )
    )


def racing(behind: ViewRunner, ahead: ViewRunner, through: int) -> list[int]:
    """Has `ahead` apply the log up to `through` just before `behind` writes its next run, as
    a runner in another process may between `behind` reading the views' position and taking
    the write lock; returns the position `ahead` reached."""
    apply = behind.store.apply
    reached: list[int] = []

    def overtaken(*args: Any) -> Any:
        if not reached:
            head = ahead.head
            ahead.head = lambda: through
            try:
                reached.append(ahead.catch_up())
            finally:
                ahead.head = head
        return apply(*args)

    behind.store.apply = overtaken  # type: ignore[method-assign]
    return reached
