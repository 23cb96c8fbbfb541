"""The data subject's access package holds every personal value held about them, on both
backends (GDPR Art. 15/20; `subject export`, the portal's package).

The fields are not listed here by hand: they are found in the domain's event classes (every
field, nested or not, typed as a classified `PersonalField`), so a personal value a later
event holds fails this test until the story plants a marker in it and the package carries it.
The story is the marked one (tests/marked_story.py: every value distinctive), and then a
second consent withdrawn from a running investigation, which resumes under a third, a
compliance officer's break-glass read, the resumed investigation cancelled, the report put on
legal hold, and an erasure request."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any, ClassVar, Union
from uuid import UUID

import pytest

from domain.access import DataDisclosure
from domain.check import CheckType
from domain.classification import PersonalField
from domain.subject import SubjectAggregate
from infra.bootstrap import build_app
from infra.config import Settings
from projections.events import stored_event_types
from services.access import Role
from services.application import Backcheck
from services.dto import (
    CancelInvestigation,
    LegalHold,
    ReadProfile,
    RequestErasure,
    ResumeInvestigation,
    WithdrawConsent,
)
from services.subject_export import ExportSubjectData
from tests import marked_story as ms
from tests import story as s
from tests.conftest import FakeClock

EXCLUDED_2, THIRD_2, WITHDRAWAL_2 = "ZQX-EXCL-31", "ZQX-THIRD-32", "ZQX-WITHDRAW-33 paused"
EXCLUDED_3, THIRD_3 = "ZQX-EXCL-34", "ZQX-THIRD-35"
GLASS, ERASURE_REQUEST = "ZQX-GLASS-36 tribunal order", "ZQX-ERASE-37 not hired"
CANCELLATION, HOLD = "ZQX-CANCEL-38 took another offer", "ZQX-HOLD-39 tribunal claim"
MARKERS = (*ms.MARKERS, EXCLUDED_2, THIRD_2, WITHDRAWAL_2, EXCLUDED_3, THIRD_3, GLASS)
MARKERS += (ERASURE_REQUEST, CANCELLATION, HOLD)


def _paths(hint: Any, at: str, seen: frozenset[type]) -> Iterator[str]:
    """The paths under a field of type `hint` that hold a personal value (`[]`: any item)."""
    origin = typing.get_origin(hint)
    if hint is PersonalField:
        yield at
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            yield from _paths(arg, at, seen)
    elif origin in (tuple, list, frozenset, set):
        for arg in typing.get_args(hint):
            if arg is not Ellipsis:
                yield from _paths(arg, f"{at}[]", seen)
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint not in seen:
        for name, inner in typing.get_type_hints(hint).items():
            yield from _paths(inner, f"{at}.{name}" if at else name, seen | {hint})


def declared() -> set[tuple[str, str]]:
    """(event, path) of every personal value any event about a data subject may hold."""
    found = set()
    for cls in stored_event_types().values():
        if not issubclass(cls, SubjectAggregate.Event):
            continue
        for name, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is ClassVar:
                continue
            for path in _paths(hint, name, frozenset()):
                found.add((cls.__qualname__, path))
    return found


def held(value: Any, at: str = "") -> Iterator[tuple[str, str, PersonalField]]:
    """(path as declared, path with indices, field) of every personal value in an event."""
    if isinstance(value, PersonalField):
        yield at, at, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from held(getattr(value, f.name), f"{at}.{f.name}" if at else f.name)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            for shape, path, field in held(item, f"{at}[]"):
                yield shape, path.replace(f"{at}[]", f"{at}[{i}]", 1), field
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from held(item, f"{at}.{key}" if at else str(key))


def value_at(data: Any, path: str) -> Any:
    for part in path.replace("[", ".[").split("."):
        data = data[int(part[1:-1])] if part.startswith("[") else data[part]
    return data


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def resumed_under_a_third_consent(app: Backcheck, candidate: UUID) -> UUID:
    """A second consent, a check started under it, the consent withdrawn (the investigation
    suspended), a third consent, and the investigation resumed under it (its id)."""

    def consent(excluded: str, third: str) -> UUID:
        terms = s.terms_in(
            check_types=[CheckType.EMPLOYMENT],
            excluded_organisations=[excluded],
            third_parties=[third],
        )
        consent_id = s.request_consent(app, candidate, terms)
        s.grant_consent(app, consent_id, terms)
        return consent_id

    story = s.plan(app, s.Story(candidate, consent(EXCLUDED_2, THIRD_2)))
    s.notify(app, story)
    s.start(app, story)
    app.withdraw_consent(
        WithdrawConsent(consent_id=story.consent_id, reason=WITHDRAWAL_2, actor=s.CANDIDATE)
    )
    app.resume_investigation(
        ResumeInvestigation(
            investigation_id=story.investigation,
            consent_id=consent(EXCLUDED_3, THIRD_3),
            actor=s.RECRUITER,
        )
    )
    return story.investigation


def test_the_access_package_holds_every_personal_value_the_domain_can_hold_about_them(
    app: Backcheck,
) -> None:
    # given: a marker in every value of the candidate's case
    marked = ms.tell(app)
    resumed = resumed_under_a_third_consent(app, marked.candidate_id)
    app.cancel_investigation(
        CancelInvestigation(investigation_id=resumed, reason=CANCELLATION, actor=s.RECRUITER)
    )
    app.place_legal_hold(LegalHold(report_id=marked.report_id, reason=HOLD, actor="legal:he.yun"))
    app.read_profile(
        ReadProfile(
            candidate_id=marked.candidate_id,
            principal="compliance:wu.min",
            role=Role.COMPLIANCE,
            purpose=s.PURPOSE,
            break_glass=GLASS,
        )
    )
    app.request_erasure(
        RequestErasure(candidate_id=marked.candidate_id, reason=ERASURE_REQUEST, actor="dpo")
    )
    before = app.recorder.max_notification_id() or 0

    # when
    package = app.export_subject_data(
        ExportSubjectData(candidate_id=marked.candidate_id, actor="compliance:wu.min")
    )

    # then: each personal value of each event, in that event's record, opened
    records = {r.position: r for r in package.records}
    planted: set[tuple[str, str]] = set()
    categories: set[str] = set()
    for position, event in app.replay(subject=marked.candidate_id):
        if position > before:
            break
        for shape, path, field in held(vars(event)):
            kind = type(event).__qualname__
            planted.add((kind, shape))
            categories.add(field.category)
            assert [m for m in MARKERS if m.casefold() in field.value.casefold()], (kind, path)
            assert position in records, f"{kind} at {position} is not in the package"
            assert value_at(records[position].data, path) == {
                "name": field.name,
                "category": field.category,
                "tier": field.tier.value,
                "value": field.value,
            }, (kind, path)
    missing = declared() - planted
    assert not missing, f"personal fields the story plants nothing in: {sorted(missing)}"
    exported = package.model_dump_json()
    assert [m for m in MARKERS if m not in exported] == []
    # one disclosure, naming every category the package carries
    disclosures = [
        e
        for p, e in app.replay(subject=marked.candidate_id, start=before + 1)
        if type(e) is DataDisclosure.DataDisclosed
    ]
    assert [d.originator_id for d in disclosures] == [package.disclosure_id]
    assert categories <= set(disclosures[0].categories)


def test_the_fields_are_found_in_the_domain_not_listed_by_hand() -> None:
    found = declared()
    assert ("Investigation.FindingRecorded", "finding.notes") in found
    assert ("Investigation.FindingRecorded", "finding.source.organisation") in found
    assert ("Report.Approved", "comments") in found
    assert ("Consent.Withdrawn", "reason") in found
    assert ("Candidate.ClaimsSubmitted", "claims[].fields[]") in found
