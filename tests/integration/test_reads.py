"""Access-controlled reads: what each role gets, what is withheld, what is refused — and that
every read, of any outcome, left exactly one access event, stored before the answer."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from domain.access import Access, justification
from domain.check import CheckType, Method
from domain.errors import AccessRefusedError
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.transcoder import typed_mapper
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AccessLogView,
    AmendmentIn,
    AmendReport,
    ClaimIn,
    GiveFeedback,
    NotifyCandidate,
    PersonalFieldIn,
    PlanInvestigation,
    PlannedCheckIn,
    ReadAccessLog,
    ReadProfile,
    ReadProfiles,
    ReadReport,
    RecordDisclosure,
    ReportView,
    ReviewReport,
    StartInvestigation,
    SubmitClaims,
    WithdrawConsent,
)
from services.errors import AggregateMissingError
from tests import story as s
from tests.batching import queued_behind_a_round
from tests.conftest import FakeClock
from tests.processes import read_in_a_process

SECRET_VALUE = "no records found"


def candidate_with_a_secret_claim(app: Backcheck) -> s.Story:
    """Consent names the criminal-record check; an investigator is assigned to it."""
    terms = s.terms_in(
        check_types=["employment", "criminal_record"], categories=["user.criminal_history"]
    )
    candidate_id = s.register(app)
    consent_id = s.request_consent(app, candidate_id, terms)
    s.grant_consent(app, consent_id, terms)
    app.submit_claims(
        SubmitClaims(
            candidate_id=candidate_id,
            consent_id=consent_id,
            claims=[
                ClaimIn(
                    kind="personal",
                    fields=[
                        PersonalFieldIn(
                            name="record", category="user.criminal_history", value=SECRET_VALUE
                        )
                    ],
                ),
                ClaimIn(
                    kind="employment",
                    fields=[
                        PersonalFieldIn(
                            name="employer", category="user.employment.employer", value=s.EMPLOYER
                        )
                    ],
                ),
            ],
            actor=s.CANDIDATE,
        )
    )
    plan = app.plan_investigation(
        PlanInvestigation(
            candidate_id=candidate_id,
            consent_id=consent_id,
            purpose=s.PURPOSE,
            checks=[
                PlannedCheckIn(check_type=CheckType.CRIMINAL_RECORD, methods=[Method.REGISTRY])
            ],
            investigators=[s.INVESTIGATOR],
            due_by=app.clock(),
            actor=s.RECRUITER,
        )
    )
    app.notify_candidate(
        NotifyCandidate(
            investigation_id=plan.investigation_id,
            purpose=s.PURPOSE,
            process="registry lookup",
            content="criminal record",
            time_required="two days",
            channel="email",
            actor=s.RECRUITER,
        )
    )
    app.start_investigation(
        StartInvestigation(investigation_id=plan.investigation_id, actor=s.RECRUITER)
    )
    return s.Story(candidate_id, consent_id, plan.investigation_id)


def read(
    app: Backcheck, st: s.Story, principal: str, role: Role, **kw: object
) -> dict[str, object]:
    view = app.read_profile(
        ReadProfile(
            candidate_id=st.candidate_id,
            principal=principal,
            role=role,
            purpose=kw.pop("purpose", s.PURPOSE),
            **kw,
        )  # type: ignore[arg-type]
    )
    return {f.name: f.value for f in view.fields}


def accesses(app: Backcheck, candidate_id: UUID) -> list[Access.Recorded]:
    """The access events stored for the candidate, read from the event store itself."""
    return [
        e
        for _, e in app.replay()
        if isinstance(e, Access.Recorded) and e.candidate_id == candidate_id
    ]


@pytest.mark.parametrize(
    ("principal", "role", "extra", "visible"),
    [
        (s.RECRUITER, Role.RECRUITER, {}, {"name", "email", "employment.employer"}),
        (
            s.INVESTIGATOR,
            Role.INVESTIGATOR,
            {},
            {"name", "email", "employment.employer", "personal.record"},
        ),
        (
            "compliance:zhou",
            Role.COMPLIANCE,
            {"break_glass": "subpoena 2026-117, case 5"},
            {"name", "email", "employment.employer", "personal.record"},
        ),
    ],
    ids=["recruiter-general-only", "investigator-secret-in-plan", "compliance-break-glass"],
)
def test_each_role_sees_its_fields_and_the_rest_is_withheld(
    sqlite_app: Backcheck, principal: str, role: Role, extra: dict[str, object], visible: set[str]
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    before = len(accesses(sqlite_app, st.candidate_id))

    fields = read(sqlite_app, st, principal, role, **extra)

    assert {k for k, v in fields.items() if v is not None} == visible
    assert all(v is None for k, v in fields.items() if k not in visible)
    (recorded,) = accesses(sqlite_app, st.candidate_id)[before:]
    assert recorded.principal == principal
    assert set(recorded.returned) | set(recorded.withheld) == {
        "user.name",
        "user.contact.email",
        "user.criminal_history",
        "user.employment.employer",
    }


@pytest.mark.parametrize(
    ("principal", "role", "purpose"),
    [
        ("hr:someone.else", Role.RECRUITER, s.PURPOSE),
        (s.RECRUITER, Role.RECRUITER, "marketing"),
        ("compliance:zhou", Role.COMPLIANCE, s.PURPOSE),
        ("hiring-manager:sun", Role.HIRING_MANAGER, s.PURPOSE),
    ],
    ids=[
        "recruiter-not-handling",
        "unconsented-purpose",
        "compliance-without-break-glass",
        "hiring-manager-nothing-disclosed",
    ],
)
def test_a_refused_read_is_recorded_then_refused(
    sqlite_app: Backcheck, principal: str, role: Role, purpose: str
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)

    with pytest.raises(AccessRefusedError, match="refusal was recorded"):
        read(sqlite_app, st, principal, role, purpose=purpose)

    (recorded,) = accesses(sqlite_app, st.candidate_id)
    assert (recorded.outcome, recorded.returned) == ("refused", ())


@pytest.mark.parametrize(
    ("principal", "role"),
    [
        (s.RECRUITER, Role.RECRUITER),
        (s.INVESTIGATOR, Role.INVESTIGATOR),
    ],
    ids=["recruiter", "investigator"],
)
def test_break_glass_from_anyone_but_compliance_is_refused_whole_and_recorded(
    sqlite_app: Backcheck, principal: str, role: Role
) -> None:
    """Without the justification each of them reads some fields (the test above); stating one
    is not theirs to do: nothing is returned, and the refusal is recorded with it."""
    st = candidate_with_a_secret_claim(sqlite_app)
    why = "I just need to see it all, urgently"

    with pytest.raises(AccessRefusedError, match="break-glass-is-for-compliance-only"):
        read(sqlite_app, st, principal, role, break_glass=why)

    (recorded,) = accesses(sqlite_app, st.candidate_id)
    assert (recorded.principal, recorded.outcome, recorded.returned) == (
        principal,
        "refused",
        (),
    )
    assert recorded.break_glass == justification(why)  # sealed with the subject's data
    assert recorded.policy_ids == ("break-glass-is-for-compliance-only",)


def decrypted_categories(app: Backcheck, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The category of every personal value decrypted from now on (the one place values are
    decrypted: event store and views alike)."""
    sealer = typed_mapper(app.mapper).sealer
    assert sealer is not None
    decrypted: list[str] = []
    real = sealer.open_field

    def spy(envelope: dict[str, str], path: str, ctx: tuple[str, str, int]) -> str:
        decrypted.append(envelope["category"])
        return real(envelope, path, ctx)

    monkeypatch.setattr(sealer, "open_field", spy)
    return decrypted


def test_a_read_decrypts_only_the_values_it_returns(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    decrypted = decrypted_categories(sqlite_app, monkeypatch)

    fields = read(sqlite_app, st, s.RECRUITER, Role.RECRUITER)

    assert fields["personal.record"] is None
    assert sorted(decrypted) == ["user.contact.email", "user.employment.employer", "user.name"]
    decrypted.clear()
    assert read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)["personal.record"] == (
        SECRET_VALUE
    )
    assert "user.criminal_history" in decrypted  # the spy sees what is decrypted


def test_the_facts_a_read_is_decided_on_open_no_personal_value(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate's feedback sits sealed in the investigation row a profile read looks at
    (who is assigned, what is planned); looking decrypts none of it."""
    st = candidate_with_a_secret_claim(sqlite_app)
    sqlite_app.give_feedback(
        GiveFeedback(investigation_id=st.investigation, text="When do you call?", actor=s.CANDIDATE)
    )
    sqlite_app.read_model()  # the views current: what follows is the read alone
    decrypted = decrypted_categories(sqlite_app, monkeypatch)

    read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)

    assert "user.criminal_history" in decrypted
    assert "user.statement" not in decrypted


def test_a_refused_read_decrypts_nothing(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    decrypted = decrypted_categories(sqlite_app, monkeypatch)

    with pytest.raises(AccessRefusedError):
        read(sqlite_app, st, "hiring-manager:sun", Role.HIRING_MANAGER)

    assert decrypted == []


def test_after_withdrawal_others_are_refused_but_the_candidate_still_reads_their_own(
    sqlite_app: Backcheck,
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    sqlite_app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )

    with pytest.raises(AccessRefusedError, match="no-read-without-active-consent"):
        read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)
    own = read(sqlite_app, st, f"candidate:{st.candidate_id}", Role.CANDIDATE)

    assert own["personal.record"] == SECRET_VALUE
    assert [a.outcome for a in accesses(sqlite_app, st.candidate_id)] == ["refused", "allowed"]
    log = read_log(sqlite_app, st.candidate_id, f"candidate:{st.candidate_id}", Role.CANDIDATE)
    assert [(e.principal, e.outcome) for e in log.entries] == [
        (s.INVESTIGATOR, "refused"),
        (f"candidate:{st.candidate_id}", "allowed"),
    ]


def read_log(app: Backcheck, candidate_id: UUID, principal: str, role: Role) -> AccessLogView:
    return app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate_id, principal=principal, role=role, purpose="who read what"
        )
    )


LOG_READERS = [
    pytest.param("candidate:{id}", Role.CANDIDATE, "candidate-reads-own-access-log", id="own"),
    pytest.param("compliance:zhou", Role.COMPLIANCE, "compliance-reads-access-logs", id="audit"),
]
LOG_REFUSED = [
    pytest.param(f"candidate:{uuid4()}", Role.CANDIDATE, id="another-candidate"),
    pytest.param(s.RECRUITER, Role.RECRUITER, id="their-recruiter"),
    pytest.param(s.INVESTIGATOR, Role.INVESTIGATOR, id="their-investigator"),
    pytest.param("reviewer:qian", Role.REVIEWER, id="reviewer"),
    pytest.param("hiring-manager:sun", Role.HIRING_MANAGER, id="hiring-manager"),
    pytest.param("service:ats", Role.SERVICE, id="service"),
]


@pytest.mark.parametrize(("principal", "role", "policy"), LOG_READERS)
def test_the_candidate_and_compliance_read_the_access_log_even_after_withdrawal(
    sqlite_app: Backcheck, principal: str, role: Role, policy: str
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)
    sqlite_app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )
    principal = principal.format(id=st.candidate_id)
    before = accesses(sqlite_app, st.candidate_id)

    log = read_log(sqlite_app, st.candidate_id, principal, role)

    assert log.outcome == "allowed"
    assert [(e.principal, e.outcome, e.view) for e in log.entries] == [
        (s.INVESTIGATOR, "allowed", "profile")
    ]
    (recorded,) = accesses(sqlite_app, st.candidate_id)[len(before) :]
    assert recorded.originator_id == log.access_id
    assert (recorded.principal, recorded.role, recorded.view) == (principal, role, "access log")
    assert (recorded.outcome, recorded.policy_ids) == ("allowed", (policy,))
    assert (recorded.returned, recorded.withheld, recorded.tiers) == ((), (), ())
    # the next read of the log shows this one
    again = read_log(sqlite_app, st.candidate_id, principal, role)
    assert [e.access_id for e in again.entries][-1] == log.access_id


@pytest.mark.parametrize(("principal", "role"), LOG_REFUSED)
def test_nobody_else_reads_the_access_log_and_the_refusal_is_recorded(
    sqlite_app: Backcheck, principal: str, role: Role
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)  # consent active, investigator assigned
    read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)

    with pytest.raises(AccessRefusedError, match=r"access log .*\(no-policy-permits\)"):
        read_log(sqlite_app, st.candidate_id, principal, role)

    refused = [a for a in accesses(sqlite_app, st.candidate_id) if a.view == "access log"]
    assert [(a.principal, a.outcome) for a in refused] == [(principal, "refused")]
    assert refused[0].policy_ids == ("no-policy-permits",)


def test_the_access_log_of_an_unknown_candidate_is_not_found_and_nothing_is_recorded(
    sqlite_app: Backcheck,
) -> None:
    stored = sqlite_app.recorder.max_notification_id()

    with pytest.raises(AggregateMissingError):
        read_log(sqlite_app, uuid4(), "compliance:zhou", Role.COMPLIANCE)

    assert sqlite_app.recorder.max_notification_id() == stored


def disk_full(app: Backcheck, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on (until `monkeypatch.undo()`), every write to the store fails."""

    def insert_events(*_: object, **__: object) -> None:
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(app.recorder, "insert_events", insert_events)


def test_if_the_read_cannot_be_recorded_nothing_is_returned(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)

    disk_full(sqlite_app, monkeypatch)
    with pytest.raises(OperationalError):
        read(sqlite_app, st, s.RECRUITER, Role.RECRUITER)
    monkeypatch.undo()
    assert accesses(sqlite_app, st.candidate_id) == []


def test_access_events_hold_no_personal_values(sqlite_app: Backcheck) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    read(sqlite_app, st, s.INVESTIGATOR, Role.INVESTIGATOR)

    stored = [
        n.state
        for n in sqlite_app.recorder.select_notifications(start=1, limit=1000)
        if n.topic.endswith("Access.Recorded")
    ]

    assert len(stored) == 1
    for value in ("Li Lei", "li.lei@example.com", SECRET_VALUE, s.EMPLOYER):
        assert value.encode() not in stored[0]
    assert b"user.criminal_history" in stored[0]


def test_audit_check_flags_an_access_outside_consent(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    st = candidate_with_a_secret_claim(app)
    app.withdraw_consent(WithdrawConsent(consent_id=st.consent_id, reason="no", actor="candidate"))
    forged = Access.record(
        st.candidate_id,
        s.RECRUITER,
        "recruiter",
        s.PURPOSE,
        "profile",
        ("user.name",),
        (),
        "allowed",
        ("recruiter-reads-general-of-own-candidates",),
        "x",
        (st.consent_id,),
        authentication="operator",
    )
    app.save(forged)  # written around the query service, as a buggy reader would

    (found,) = list(app.violations())

    assert found.rule == "access outside consent"
    assert found.position == app.recorder.max_notification_id()


def test_a_disclosure_outside_the_read_path_is_recorded_and_shown_to_the_candidate(
    sqlite_app: Backcheck,
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)

    sqlite_app.record_disclosure(
        RecordDisclosure(
            candidate_id=st.candidate_id,
            recipient="labour inspectorate",
            purpose="statutory inspection",
            channel="evidence bundle",
            actor="compliance:zhou",
        )
    )

    (entry,) = sqlite_app.recorded_accesses(st.candidate_id)
    assert (entry.outcome, entry.view) == ("disclosed", "evidence bundle to labour inspectorate")
    assert "user.criminal_history" in entry.returned
    stored = [
        n.state
        for n in sqlite_app.recorder.select_notifications(start=1, limit=1000)
        if n.topic.endswith("DataDisclosed")
    ]
    assert len(stored) == 1
    assert SECRET_VALUE.encode() not in stored[0]


def test_report_results_say_a_note_is_on_file_without_its_text(sqlite_app: Backcheck) -> None:
    st = s.shared_report(sqlite_app)
    note = "dates differ; candidate explains a sabbatical"

    amended = sqlite_app.amend_report(
        AmendReport(
            report_id=st.report,
            amendments=[AmendmentIn(check_id=st.check_id, outcome="confirmed", note=note)],
            reason="candidate explained",
            actor=s.RECRUITER,
        )
    )

    assert [i.has_note for i in amended.items] == [True]
    assert note not in amended.model_dump_json()
    assert note not in sqlite_app.get_report(st.report).model_dump_json()


def test_a_caseload_read_decides_and_records_each_candidate_on_its_own(
    sqlite_app: Backcheck,
) -> None:
    readable = candidate_with_a_secret_claim(sqlite_app)
    withdrawn = candidate_with_a_secret_claim(sqlite_app)
    sqlite_app.withdraw_consent(
        WithdrawConsent(
            consent_id=withdrawn.consent_id, reason="changed my mind", actor=s.CANDIDATE
        )
    )
    single = read(sqlite_app, readable, s.INVESTIGATOR, Role.INVESTIGATOR)

    batch = sqlite_app.read_profiles(
        ReadProfiles(
            candidate_ids=[readable.candidate_id, withdrawn.candidate_id],
            principal=s.INVESTIGATOR,
            role=Role.INVESTIGATOR,
            purpose=s.PURPOSE,
        )
    )

    allowed, refused = batch.profiles
    assert {f.name: f.value for f in allowed.fields} == single
    assert (refused.outcome, refused.fields) == ("refused", [])
    assert "no-read-without-active-consent" in refused.refused_because
    assert [a.outcome for a in accesses(sqlite_app, readable.candidate_id)] == ["allowed"] * 2
    (recorded,) = accesses(sqlite_app, withdrawn.candidate_id)
    assert (recorded.originator_id, recorded.outcome) == (refused.access_id, "refused")


def test_if_a_caseload_read_cannot_be_recorded_nothing_is_returned(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (candidate_with_a_secret_claim(sqlite_app) for _ in range(2))

    disk_full(sqlite_app, monkeypatch)
    with pytest.raises(OperationalError):
        sqlite_app.read_profiles(
            ReadProfiles(
                candidate_ids=[first.candidate_id, second.candidate_id],
                principal=s.RECRUITER,
                role=Role.RECRUITER,
                purpose=s.PURPOSE,
            )
        )
    monkeypatch.undo()
    assert accesses(sqlite_app, first.candidate_id) == []
    assert accesses(sqlite_app, second.candidate_id) == []


def read_report(app: Backcheck, st: s.Story, principal: str, role: Role) -> ReportView:
    return app.read_report(
        ReadReport(report_id=st.report, principal=principal, role=role, purpose=s.PURPOSE)
    )


def test_a_hiring_manager_reads_the_report_disclosed_to_them_and_no_one_elses(
    sqlite_app: Backcheck,
) -> None:
    st = s.shared_report(sqlite_app)
    with pytest.raises(AccessRefusedError, match="refusal was recorded"):
        read_report(sqlite_app, st, s.HIRING_MANAGER, Role.HIRING_MANAGER)  # not yet disclosed
    s.disclose(sqlite_app, st)

    seen = read_report(sqlite_app, st, s.HIRING_MANAGER, Role.HIRING_MANAGER)
    with pytest.raises(AccessRefusedError):
        read_report(sqlite_app, st, "manager:someone.else", Role.HIRING_MANAGER)

    (item,) = seen.items
    assert (seen.outcome, item.withheld, item.outcome) == ("allowed", False, "confirmed")
    assert item.source_count == 2
    outcomes = [a.outcome for a in accesses(sqlite_app, st.candidate_id)]
    assert outcomes == ["refused", "allowed", "refused"]  # one access event per read
    (entry, *_) = [
        e for e in sqlite_app.recorded_accesses(st.candidate_id) if e.outcome == "allowed"
    ]
    assert (entry.principal, entry.view) == (s.HIRING_MANAGER, f"report {st.report}")


def test_a_reviewer_reads_a_report_under_review_but_not_once_it_is_approved(
    sqlite_app: Backcheck,
) -> None:
    st = s.compiled_report(sqlite_app)

    under_review = read_report(sqlite_app, st, s.REVIEWER, Role.REVIEWER)
    sqlite_app.review_report(ReviewReport(report_id=st.report, approve=True, actor=s.REVIEWER))

    assert under_review.outcome == "allowed"
    assert under_review.items[0].outcome == "confirmed"
    with pytest.raises(AccessRefusedError):
        read_report(sqlite_app, st, s.REVIEWER, Role.REVIEWER)
    assert [a.outcome for a in accesses(sqlite_app, st.candidate_id)] == ["allowed", "refused"]


def profile_read(app: Backcheck, candidate_id: UUID, purpose: str = s.PURPOSE) -> Any:
    return lambda: app.read_profile(
        ReadProfile(
            candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=purpose
        )
    )


def test_concurrent_reads_are_decided_together_and_each_recorded_on_its_own(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    st = candidate_with_a_secret_claim(sqlite_app)
    report = s.shared_report(sqlite_app, "Han Meimei")
    s.disclose(sqlite_app, report)
    nobody = uuid4()
    started = clock.now
    commits = sqlite_app.recorder.group  # type: ignore[attr-defined]
    transactions = commits.rounds

    # readers arrive one after another, a minute apart, while a batch is being recorded
    results = queued_behind_a_round(
        sqlite_app.recorded_reads,
        [
            profile_read(sqlite_app, st.candidate_id),
            profile_read(sqlite_app, st.candidate_id, purpose="marketing"),
            profile_read(sqlite_app, nobody),
            lambda: read_report(sqlite_app, report, s.HIRING_MANAGER, Role.HIRING_MANAGER),
            profile_read(sqlite_app, st.candidate_id),
        ],
        before_each=lambda i: clock.advance(minutes=1 if i else 0),
    )

    (allowed, no), (_, refused), (_, missing), (seen, no_), (again, no__) = results
    assert (no, no_, no__) == (None, None, None)
    assert sqlite_app.recorded_reads.rounds == 1  # one batch: views caught up once, decided
    assert commits.rounds == transactions + 1  # and all of it recorded in one transaction
    shown = {f.name for f in allowed.fields if not f.withheld}
    assert shown == {"name", "email", "employment.employer"}
    assert [f.value for f in again.fields] == [f.value for f in allowed.fields]
    assert isinstance(refused, AccessRefusedError)
    assert isinstance(missing, AggregateMissingError)  # fails alone, and records nothing
    assert accesses(sqlite_app, nobody) == []
    assert (seen.outcome, seen.items[0].outcome) == ("allowed", "confirmed")
    recorded = accesses(sqlite_app, st.candidate_id)
    assert [(a.outcome, a.purpose) for a in recorded] == [
        ("partial", s.PURPOSE),
        ("refused", "marketing"),
        ("partial", s.PURPOSE),
    ]
    assert [recorded[0].originator_id, recorded[2].originator_id] == [
        allowed.access_id,
        again.access_id,
    ]
    (report_read,) = accesses(sqlite_app, report.candidate_id)
    assert report_read.originator_id == seen.access_id
    # each access event carries the time its own read was asked, not the batch's
    assert [a.timestamp for a in recorded] == [
        started,
        started + timedelta(minutes=1),
        started + timedelta(minutes=4),
    ]
    assert report_read.timestamp == started + timedelta(minutes=3)


def test_if_a_batch_of_reads_cannot_be_recorded_none_of_them_returns_anything(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (candidate_with_a_secret_claim(sqlite_app) for _ in range(2))

    disk_full(sqlite_app, monkeypatch)
    results = queued_behind_a_round(
        sqlite_app.recorded_reads,
        [
            profile_read(sqlite_app, first.candidate_id),
            profile_read(sqlite_app, second.candidate_id),
        ],
    )
    monkeypatch.undo()

    assert [(value, type(error)) for value, error in results] == [(None, OperationalError)] * 2
    assert accesses(sqlite_app, first.candidate_id) == []
    assert accesses(sqlite_app, second.candidate_id) == []
    assert read(sqlite_app, first, s.RECRUITER, Role.RECRUITER)  # and the next read goes ahead


def test_readers_at_once_each_get_their_own_answer_and_leave_one_access_event_each(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    try:
        stories = [candidate_with_a_secret_claim(app) for _ in range(3)]
        marketing = {1}  # one reader asks for a purpose no consent names: refused, recorded
        got: dict[tuple[int, int], str] = {}

        def reader(n: int) -> None:
            for i in range(30):
                st = stories[(n + i) % len(stories)]
                purpose = "marketing" if n in marketing else s.PURPOSE
                try:
                    view = app.read_profile(
                        ReadProfile(
                            candidate_id=st.candidate_id,
                            principal=s.INVESTIGATOR,
                            role=Role.INVESTIGATOR,
                            purpose=purpose,
                        )
                    )
                    got[(n, i)] = view.outcome
                    assert {f.name: f.value for f in view.fields}["personal.record"] == (
                        SECRET_VALUE
                    )
                except AccessRefusedError:
                    got[(n, i)] = "refused"

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

        assert len(got) == 6 * 30  # every read answered (an assertion error would be missing)
        assert sorted(set(got.values())) == ["allowed", "refused"]
        recorded = [a for st in stories for a in accesses(app, st.candidate_id)]
        assert len(recorded) == 6 * 30  # one access event per read, of any outcome
        assert sum(a.outcome == "refused" for a in recorded) == 30
        assert app.recorded_reads.rounds < 6 * 30  # some reads were decided together
    finally:
        app.close()
    with open_source(settings) as source:
        assert verify(source).intact


def test_readers_in_two_processes_on_one_store_each_leave_one_access_event_per_read(
    settings: Settings,
) -> None:
    """Two processes reading one store at once, as two service instances would: every read
    answered, one access event each, the chain intact, the access log complete."""
    app = build_app(settings)
    try:
        stories = [s.investigation_under_way(app, f"Candidate {i}") for i in range(3)]
    finally:
        app.close()
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(2), spawn.Queue()
    ids = [st.candidate_id for st in stories]
    processes = [
        spawn.Process(target=read_in_a_process, args=(settings, ids, 3, 15, start, results))
        for _ in range(2)
    ]
    for p in processes:
        p.start()
    got = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(30)

    assert [kind for kind, _ in got] == ["ok", "ok"], got
    assert [len(outcomes) for _, outcomes in got] == [45, 45]
    app = build_app(settings)
    try:
        recorded = [a for st in stories for a in accesses(app, st.candidate_id)]
        assert len(recorded) == 90
        logged = [e for st in stories for e in app.recorded_accesses(st.candidate_id)]
        assert sorted(e.access_id for e in logged) == sorted(a.originator_id for a in recorded)
    finally:
        app.close()
    with open_source(settings) as source:
        assert verify(source).intact
