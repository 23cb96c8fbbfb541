"""Every event survives the store's orjson encoding with its exact types restored.

orjson writes UUIDs, datetimes, enums, tuples and dataclasses as plain JSON; the TypedMapper must
turn each back into the declared type. Equality alone would hide a str standing in for a StrEnum
or a list for a tuple, so the comparison below also checks the type of every value.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import StoredEvent
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.access import Access, DataDisclosure
from domain.candidate import Candidate, Claim, ClaimKind, ErasureGround, ErasureReceipt
from domain.check import CheckType, Method, Outcome, SourceRole
from domain.classification import PersonalField
from domain.consent import Consent, SignatureMethod
from domain.duty import DutyRun
from domain.errors import DomainError
from domain.investigation import Investigation
from domain.principal import Principal
from domain.report import Amendment, Report
from domain.screening import screen
from domain.sender import SenderRefusal
from infra.store.transcoder import (
    EventTooLargeError,
    OrjsonTranscoder,
    TypedMapper,
    UnknownEventTypeError,
)
from tests.story import (
    CALLER,
    DISCLOSER,
    DOCUMENT_SHA256,
    INVESTIGATOR,
    NOW,
    PURPOSE,
    RECRUITER,
    REVIEWER,
    VALID_FOR,
    claim,
    finding,
    new_consent,
    notice,
    only_check,
    planned_investigation,
    scope_for,
    terms,
)

AGGREGATES: tuple[type[Aggregate], ...] = (
    Candidate,
    Consent,
    Investigation,
    Report,
    Access,
    DataDisclosure,
    Principal,
    SenderRefusal,
    DutyRun,
)
SHANGHAI = timezone(timedelta(hours=8))


def mapper() -> TypedMapper:
    return TypedMapper(transcoder=OrjsonTranscoder())


def round_trip(event: DomainEvent) -> Any:
    m = mapper()
    return m.to_domain_event(m.to_stored_event(event))


def assert_same(restored: Any, original: Any, path: str) -> None:
    """Equal, and of exactly the same type, all the way down."""
    assert type(restored) is type(original), (
        f"{path}: {type(restored).__name__} instead of {type(original).__name__}"
    )
    if dataclasses.is_dataclass(original):
        for f in dataclasses.fields(original):
            assert_same(getattr(restored, f.name), getattr(original, f.name), f"{path}.{f.name}")
    elif isinstance(original, tuple | list):
        assert len(restored) == len(original), path
        for i, (r, o) in enumerate(zip(restored, original, strict=True)):
            assert_same(r, o, f"{path}[{i}]")
    elif isinstance(original, dict):
        assert list(restored) == list(original), path
        for key in original:
            assert_same(restored[key], original[key], f"{path}[{key!r}]")
    elif isinstance(original, datetime):
        assert restored == original, path
        assert restored.utcoffset() == original.utcoffset(), path
    else:
        assert restored == original, path


def assert_round_trips(event: DomainEvent) -> None:
    restored = round_trip(event)
    name = type(event).__qualname__
    assert type(restored) is type(event)
    assert sorted(vars(restored)) == sorted(vars(event)), name
    for key, value in vars(event).items():
        assert_same(getattr(restored, key), value, f"{name}.{key}")


def declared_event_classes() -> set[type]:
    """Every event an aggregate declares with @event (the generic bases excluded)."""
    return {
        value
        for cls in AGGREGATES
        for key, value in vars(cls).items()
        if isinstance(value, type)
        and issubclass(value, cls.Event)
        and key not in ("Event", "Created")
    }


def every_event() -> list[DomainEvent]:
    """One background check, run so that each kind of event happens at least once."""
    events: list[DomainEvent] = []

    candidate = Candidate.register(
        uuid4(),
        (
            PersonalField("name", "user.name", "李雷"),
            PersonalField("phone", "user.contact.phone", "+86 21 5555 0100"),
        ),
        RECRUITER,
    )
    consent = new_consent(
        terms(
            check_types=(CheckType.EMPLOYMENT, CheckType.CRIMINAL_RECORD),
            categories=("user.criminal_history",),
            excluded_organisations=("Current Employer Inc",),
            recording_allowed=True,
            third_parties=("Screening Partner Co",),
        ),
        candidate_id=candidate.id,
    )
    # granted in China Standard Time: the offset must survive too
    consent.grant(
        consent.requested,
        DOCUMENT_SHA256,
        SignatureMethod.E_SIGNATURE,
        NOW.astimezone(SHANGHAI),
        (NOW + VALID_FOR).astimezone(SHANGHAI),
        "esign-service",
        now=NOW,
        authenticated=CALLER,
    )
    candidate.submit_claims(
        (claim("user.criminal_history", "none"), claim("user.employment.title", "engineer")),
        consent.id,
        frozenset({"user.criminal_history"}),
        "candidate",
    )
    candidate.request_erasure("not hired", "candidate")
    candidate.shred_categories({"user.employment.title": 365}, NOW, [])
    candidate.shred_tier("secret", 180, NOW, [])
    candidate.erase(
        ErasureGround.RETENTION_ENDED, "dpo", [], ErasureReceipt('{"type":"receipt"}', "k1", "c2ln")
    )
    events += candidate.collect_events()

    inv = planned_investigation(
        CheckType.EMPLOYMENT,
        CheckType.CRIMINAL_RECORD,
        methods=(Method.PHONE, Method.REGISTRY),
        candidate_id=candidate.id,
        consent_id=consent.id,
    )
    employment, criminal = inv.checks
    inv.notify_candidate(notice(), "hr:test")
    scope = consent.scope_at(NOW)
    inv.start(scope, "hr:test")
    consent.record_reliance(inv.id)
    inv.assign("investigator:sun.li", RECRUITER)
    notes = PersonalField("notes", "user.employment.evaluation", "可靠 — dependable")
    inv.record_finding(
        finding(employment, SourceRole.DIRECT_SUPERVISOR, notes=notes, conversation_recorded=True),
        inv.scope,
    )
    inv.record_finding(finding(employment, SourceRole.HR, possible_bias=True), inv.scope)
    inv.record_finding(finding(criminal, SourceRole.REGISTRAR, method=Method.REGISTRY), inv.scope)
    inv.conclude_check(employment, Outcome.CONFIRMED, INVESTIGATOR)
    feedback_id = uuid4()
    inv.give_feedback(feedback_id, "How long will this take?")
    inv.answer_feedback(feedback_id, "About a week.", RECRUITER)
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, employment, "my title was senior engineer")
    inv.resolve_dispute(dispute_id, False, "Both sources say engineer.", RECRUITER)
    inv.suspend("consent withdrawn", consent.id)
    inv.resume(scope, "hr:test")
    inv.conclude_check(criminal, Outcome.CONFIRMED, INVESTIGATOR)
    inv.complete(INVESTIGATOR)
    events += inv.collect_events()

    cancelled = planned_investigation(candidate_id=candidate.id, consent_id=consent.id)
    cancelled.cancel("position filled", RECRUITER)
    events += cancelled.collect_events()

    report = Report.compile(inv.id, inv.results_for_report(), scope, INVESTIGATOR)
    report.review(REVIEWER, approve=True, comments="")
    report.share_with_candidate(RECRUITER)
    report_dispute = uuid4()
    report.dispute(report_dispute, employment, "my title was senior engineer")
    report.reject_dispute(report_dispute, "The contract says engineer.", RECRUITER)
    report.disclose(scope, "manager:chen.jie", "hiring manager", PURPOSE, RECRUITER, **DISCLOSER)
    report.amend(
        (Amendment(criminal, Outcome.UNVERIFIABLE, "registry offline"),),
        "registry correction",
        (),
        INVESTIGATOR,
    )
    report.review("reviewer:qian.yu", approve=False, comments="cite the registry reply")
    report.place_legal_hold("tribunal case", "legal:he.min")
    report.release_legal_hold("legal:he.min")
    report.destroy("retention period ended", RECRUITER)
    events += report.collect_events()

    consent.withdraw("changed my mind", NOW + timedelta(days=1), "candidate", CALLER)
    events += consent.collect_events()
    expiring = new_consent(candidate_id=candidate.id)
    expiring.grant(
        expiring.requested,
        DOCUMENT_SHA256,
        SignatureMethod.WET_INK,
        NOW,
        NOW + VALID_FOR,
        "esign-service",
        now=NOW,
        authenticated=CALLER,
    )
    expiring.expire(NOW + VALID_FOR)
    events += expiring.collect_events()
    events += Access.record(
        candidate.id,
        RECRUITER,
        "recruiter",
        PURPOSE,
        "profile",
        ("user.name",),
        ("user.criminal_history",),
        "partial",
        ("recruiter-reads-general-of-own-candidates",),
        "f" * 64,
        (consent.id,),
        authentication="token",
    ).collect_events()
    events += DataDisclosure.record(
        candidate.id,
        "compliance",
        "regulator",
        "inspection",
        "evidence bundle",
        ("user.name", "user.contact.email"),
        authentication="operator",
        role="compliance",
    ).collect_events()
    portal = Principal.add(
        f"candidate:{candidate.id}",
        "candidate",
        "portal",
        (candidate.id,),
        "a" * 64,
        NOW + timedelta(days=30),
        "hr:li.na",
    )
    portal.rotate("b" * 64, NOW.astimezone(SHANGHAI) + timedelta(days=7), "hr:li.na")
    portal.open_session(NOW.astimezone(SHANGHAI) + timedelta(hours=8), portal.name)
    portal.close_session(
        NOW.astimezone(SHANGHAI), portal.name, NOW.astimezone(SHANGHAI) + timedelta(minutes=5)
    )
    portal.end_session(  # another, found ended unused: by no one
        NOW.astimezone(SHANGHAI), NOW.astimezone(SHANGHAI) + timedelta(minutes=30), "idle"
    )
    portal.revoke("link forwarded by mistake", "hr:li.na")
    events += portal.collect_events()
    ats = Principal.add("svc:ats", "service", "service", (), "c" * 64, None, "operator")
    ats.issue_sender_key("A" * 43 + "=", ("register-candidate",), ("self",), "operator")
    ats.issue_sender_key(
        "B" * 43 + "=", ("register-candidate", "submit-claims"), ("hr:li.na",), "operator"
    )
    ats.revoke_sender_key("key left on a laptop", "operator")
    events += ats.collect_events()
    events += SenderRefusal.record(
        "backcheck.commands.v1/0@7", "unsigned", "no ce_keyid", "svc:ats", "c-1", "t", "", "d" * 64
    ).collect_events()
    run = DutyRun.claim("retention", NOW, "host-a:101", NOW, timedelta(hours=1))
    run.take_over("host-b:202", NOW + timedelta(hours=2), timedelta(hours=1))
    run.finish("host-b:202", 2, NOW + timedelta(hours=2, minutes=3), "succeeded", {"shredded": 3})
    events += run.collect_events()
    return events


EVENTS = every_event()


def test_the_story_covers_every_declared_event_type() -> None:
    assert {type(e) for e in EVENTS} == declared_event_classes()


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__qualname__)
def test_an_event_round_trips_with_its_exact_types(event: DomainEvent) -> None:
    assert_round_trips(event)


def test_the_stored_form_is_plain_json_without_type_tags() -> None:
    started = next(e for e in EVENTS if isinstance(e, Investigation.Started))
    stored = mapper().to_stored_event(started)
    state = orjson.loads(stored.state)
    assert state["candidate_id"] == str(started.candidate_id)
    assert state["scope"]["status"] == "active"
    assert state["scope"]["terms"]["check_types"] == ["employment", "criminal_record"]


def test_an_optional_value_left_empty_round_trips_as_none() -> None:
    without_notes = next(
        e
        for e in EVENTS
        if isinstance(e, Investigation.FindingRecorded) and e.finding.notes is None
    )
    with_notes = next(
        e for e in EVENTS if isinstance(e, Investigation.FindingRecorded) and e.finding.notes
    )
    assert round_trip(without_notes).finding.notes is None
    assert type(round_trip(with_notes).finding.notes) is PersonalField


def collectable_as_notes(text: str) -> bool:
    try:
        screen("notes", text)
    except DomainError:
        return False
    return True


@given(name=st.text(min_size=1), values=st.lists(st.text(), min_size=1, max_size=4))
def test_personal_values_of_any_unicode_text_round_trip(name: str, values: list[str]) -> None:
    # given: a candidate whose name and claims are arbitrary text
    candidate = Candidate.register(uuid4(), (PersonalField("name", "user.name", name),), RECRUITER)
    fields = tuple(PersonalField(f"f{i}", "user.education", v) for i, v in enumerate(values))
    candidate.submit_claims(
        (Claim(uuid4(), ClaimKind.EDUCATION, fields),), None, frozenset(), "candidate"
    )
    inv = planned_investigation(candidate_id=candidate.id)
    inv.notify_candidate(notice(), "hr:test")
    inv.start(scope_for(inv), "hr:test")
    notes = PersonalField("notes", "user.employment.evaluation", values[0])
    assume(collectable_as_notes(values[0]))  # notes the screen refuses are never stored
    inv.record_finding(finding(only_check(inv), SourceRole.HR, notes=notes), inv.scope)
    # when / then
    for event in (*candidate.collect_events(), *inv.collect_events()):
        assert_round_trips(event)


def test_a_topic_outside_the_domain_is_refused_without_importing_what_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a module that leaves a mark when imported, named by a stored event's topic
    module = f"planted_{uuid4().hex}"
    mark = tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(
        f"open({str(mark)!r}, 'w').close()\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    stored = StoredEvent(uuid4(), 1, f"{module}:Thing", b"{}")
    # when / then
    with pytest.raises(UnknownEventTypeError, match=f"'{module}:Thing' is no event type"):
        mapper().to_domain_event(stored)
    assert not mark.exists()
    assert module not in sys.modules


def test_an_event_larger_than_the_bound_is_refused_with_its_largest_field() -> None:
    bounded = mapper()
    bounded.max_event_bytes = 2_000
    small = Candidate.register(uuid4(), (PersonalField("name", "user.name", "Zhou"),), RECRUITER)
    large = Candidate.register(
        uuid4(), (PersonalField("name", "user.name", "x" * 3_000),), RECRUITER
    )

    assert len(bounded.to_stored_event(small.collect_events()[-1]).state) < 2_000
    with pytest.raises(EventTooLargeError) as refused:
        bounded.to_stored_event(large.collect_events()[-1])
    assert refused.value.limit == 2_000
    assert "the Candidate.Registered event this command records would be" in str(refused.value)
    assert "its largest field is 'identity' (" in str(refused.value)


def test_a_time_stored_without_its_offset_reads_as_utc() -> None:
    # given: a grant stored before commands required an offset (its times naive)
    consent = new_consent()
    consent.grant(
        consent.requested,
        DOCUMENT_SHA256,
        SignatureMethod.E_SIGNATURE,
        NOW,
        NOW + VALID_FOR,
        "esign-service",
        now=NOW,
        authenticated=CALLER,
    )
    granted = consent.collect_events()[-1]
    stored = mapper().to_stored_event(granted)
    state = orjson.loads(stored.state)
    naive = {
        "valid_from": NOW.astimezone(UTC).replace(tzinfo=None).isoformat(),
        "valid_until": (NOW + VALID_FOR).astimezone(UTC).replace(tzinfo=None).isoformat(),
    }
    old = dataclasses.replace(stored, state=orjson.dumps({**state, **naive}))

    # when: it is read back
    read = mapper().to_domain_event(old)

    # then: as UTC, so it compares with any aware time (the rules' clock)
    assert isinstance(read, Consent.Granted)
    assert (read.valid_from, read.valid_until) == (NOW, NOW + VALID_FOR)
    assert read.valid_from.utcoffset() == timedelta(0)
    assert read.valid_from < NOW + timedelta(seconds=1)
