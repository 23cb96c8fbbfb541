"""Issue 17, defect 7: a data key deleted in the database, with no erasure recorded.

Only a recorded erasure (`Candidate.Erased`, or retention's `Candidate.TierShredded` for one
tier) may make a personal value unreadable. A key row deleted around the application must
not read as "erased" with the read recorded as allowed: the read fails, and is recorded as
failed with nothing returned; `audit verify` and `audit check` name the subject and tier. An
erasure or a retention run, recorded, still reads as erased and verifies clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.access import Access
from domain.check import SourceRole
from domain.classification import ERASED_VALUE
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.runner import ViewRunner
from services.access import Role
from services.application import Backcheck
from services.dto import (
    EraseSubject,
    GiveFeedback,
    ReadInvestigation,
    ReadProfile,
    ReadProfiles,
    RequestErasure,
    RunRetention,
)
from services.errors import DataKeyMissingError
from services.shredding import MISSING
from tests import story as s
from tests.conftest import FakeClock
from tests.keys import delete_keys


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def reopened(app: Backcheck, settings: Settings, clock: FakeClock) -> Backcheck:
    """The store opened again, as the next command would (no key held in memory)."""
    app.close()
    return build_app(settings, clock=clock)


def read_profile(app: Backcheck, candidate_id: UUID) -> dict[str, str | None]:
    view = app.read_profile(
        ReadProfile(
            candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
        )
    )
    return {f.name: f.value for f in view.fields}


def accesses(app: Backcheck, candidate_id: UUID) -> list[Access.Recorded]:
    return [
        e
        for _, e in app.replay()
        if isinstance(e, Access.Recorded) and e.candidate_id == candidate_id
    ]


def key_problems(settings: Settings) -> list[tuple[int, str, str]]:
    with open_source(settings) as source:
        verdict = verify(source)
    return [(p.position, p.kind, p.detail) for p in verdict.problems]


def test_a_read_of_a_value_whose_key_was_deleted_fails_and_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    st = s.consented_candidate(app)
    delete_keys(settings, st.candidate_id)
    app = reopened(app, settings, clock)

    with pytest.raises(DataKeyMissingError) as refused:
        read_profile(app, st.candidate_id)

    message = str(refused.value)
    # a key per category: the name's key is the first the read needs
    assert f"the user.name (general) data key of candidate {st.candidate_id} is gone" in message
    assert "no erasure" in message
    assert "the attempt was recorded" in message
    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.outcome, recorded.returned) == ("failed", ())
    assert set(recorded.withheld) == {"user.name", "user.contact.email"}
    app.close()


def test_a_batch_read_with_one_key_deleted_returns_nothing_and_records_each_read_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    intact = s.consented_candidate(app, "Han Mei")
    tampered = s.consented_candidate(app)
    delete_keys(settings, tampered.candidate_id)
    app = reopened(app, settings, clock)

    with pytest.raises(DataKeyMissingError, match=str(tampered.candidate_id)):
        app.read_profiles(
            ReadProfiles(
                candidate_ids=[intact.candidate_id, tampered.candidate_id],
                principal=s.RECRUITER,
                role=Role.RECRUITER,
                purpose=s.PURPOSE,
            )
        )

    for st in (intact, tampered):
        assert [(a.outcome, a.returned) for a in accesses(app, st.candidate_id)] == [("failed", ())]
    assert read_profile(app, intact.candidate_id)["name"] == "Han Mei"  # the others still read
    app.close()


def test_an_investigation_whose_key_was_deleted_is_not_shown_and_the_read_is_recorded(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    st = s.investigation_under_way(app)
    app.give_feedback(
        GiveFeedback(investigation_id=st.investigation, text="call my old lead", actor=s.CANDIDATE)
    )
    delete_keys(settings, st.candidate_id)
    app = reopened(app, settings, clock)

    with pytest.raises(DataKeyMissingError, match=f"candidate {st.candidate_id} is gone"):
        app.read_investigation(
            ReadInvestigation(
                investigation_id=st.investigation,
                principal=f"candidate:{st.candidate_id}",
                role=Role.CANDIDATE,
                purpose=s.PURPOSE,
            )
        )

    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.outcome, recorded.returned) == ("failed", ())
    app.close()


def test_verify_and_check_name_the_subject_and_tier_of_a_key_deleted_without_an_erasure(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    st = s.investigation_under_way(app)
    s.record_finding(app, st, SourceRole.HR)  # confidential notes
    other = s.consented_candidate(app, "Han Mei")
    delete_keys(settings, st.candidate_id, "user.employment.evaluation")  # the notes' key
    app = reopened(app, settings, clock)

    problems = key_problems(settings)
    violations = list(app.violations())

    ((position, kind, detail),) = problems
    assert kind == "key missing"
    named = "user.employment.evaluation (confidential)"
    assert f"the {named} data key of candidate {st.candidate_id} is gone" in detail
    (violation,) = violations
    assert (violation.rule, violation.candidate_id) == (MISSING, st.candidate_id)
    assert violation.position == position
    assert named in violation.detail
    assert other.candidate_id not in {v.candidate_id for v in violations}
    app.close()


def test_erased_and_shredded_keys_read_as_erased_and_verify_clean(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    erased = s.consented_candidate(app, "Han Mei")
    quiet = s.completed_investigation(app)
    app.erase_subject(
        EraseSubject(candidate_id=erased.candidate_id, reason="candidate-request", actor="dpo")
    )
    app = reopened(app, settings, clock)
    assert set(read_profile(app, erased.candidate_id).values()) == {ERASED_VALUE}
    clock.advance(days=366)
    shredded = app.run_retention(RunRetention()).shredded
    assert [(i.candidate_id, i.tier) for i in shredded] == [(quiet.candidate_id, "confidential")]
    app = reopened(app, settings, clock)

    assert key_problems(settings) == []
    assert list(app.violations()) == []
    app.close()


def test_a_subject_whose_key_was_deleted_can_still_be_erased_and_others_still_read(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    tampered = s.consented_candidate(app)
    other = s.consented_candidate(app, "Han Mei")
    delete_keys(settings, tampered.candidate_id)
    app = reopened(app, settings, clock)

    # a change to the tampered subject's own view row keeps its unreadable values as they were
    app.request_erasure(
        RequestErasure(candidate_id=tampered.candidate_id, reason="asked", actor=s.CANDIDATE)
    )
    assert read_profile(app, other.candidate_id)["name"] == "Han Mei"
    with pytest.raises(DataKeyMissingError):
        read_profile(app, tampered.candidate_id)
    app.erase_subject(
        EraseSubject(candidate_id=tampered.candidate_id, reason="candidate-request", actor="dpo")
    )

    assert key_problems(settings) == []
    assert list(app.violations()) == []
    app.close()


def test_a_views_rebuild_keeps_the_values_whose_key_was_deleted_unreadable_not_erased(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    tampered = s.consented_candidate(app)
    other = s.consented_candidate(app, "Han Mei")
    delete_keys(settings, tampered.candidate_id)
    app = reopened(app, settings, clock)
    runner = app.views
    assert isinstance(runner, ViewRunner)

    runner.rebuild()

    assert read_profile(app, other.candidate_id)["name"] == "Han Mei"
    with pytest.raises(
        DataKeyMissingError, match=f"general data key of candidate {tampered.candidate_id}"
    ):
        read_profile(app, tampered.candidate_id)
    app.close()
