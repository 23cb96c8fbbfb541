"""Reads of personal data, access-controlled and recorded.

Every read goes: principal + purpose → the facts that matter (consent in force, role, case
assignment) → policy decision → view → field-level redaction → an `Access.Recorded` event,
durably stored → only then the response. If the access event cannot be stored, nothing is
returned (fail closed). A refused read is recorded too, then refused; so is a read that cannot
open a value it may return (its data key gone without a recorded erasure): recorded as
failed, nothing returned, then it fails.

How they are recorded, batched and fail closed, is services/recording.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.access import Access, AccessOutcome, ReadFailure
from domain.classification import tier_of
from domain.errors import AccessRefusedError
from domain.investigation import Investigation
from domain.report import Report
from services.access import (
    AccessRequest,
    decide_read,
)
from services.answers import (
    access_record,
    failed_attempt,
    investigation_view,
    profile_fields,
    report_view,
)
from services.dto import (
    InvestigationView,
    ProfilesView,
    ProfileView,
    Reader,
    ReadInvestigation,
    ReadProfile,
    ReadProfiles,
    ReadReport,
    ReportView,
    ValueRead,
)
from services.errors import AggregateMissingError
from services.facts import (
    access_request,
    investigation_categories,
    report_categories,
    require_justification_kept,
    screen_purpose,
)
from services.identity import ASSIGNMENTS_POLICY, authentication_now, current_identity
from services.ports import ReadModel
from services.recording import (
    Attempt,
    RecordedReads,
    Unanswered,
    failure_of,
    open_or_fail,
    recorded_failure,
)
from services.shown import shows
from services.unit import receiving_now, use_case

Doc = dict[str, Any]
ACCESS_LOG_VIEW = "access log"  # the view an access-log read names in its own record
CONSENTS_VIEW = "consent register"
T = TypeVar("T")


class QueryUseCases(RecordedReads):
    def _facts(
        self,
        cmd: Reader,
        subject: UUID,
        categories: tuple[str, ...],
        views: ReadModel,
        profile: Doc,
    ) -> AccessRequest:
        request = access_request(cmd, subject, categories, views, profile, self.now())
        screen_purpose("purpose", cmd.purpose, subject, views, request.consented_purposes)
        if isinstance(cmd, ValueRead) and cmd.break_glass is not None:
            require_justification_kept(profile, subject)
        return request

    def _profile(
        self,
        views: ReadModel,
        candidate_id: UUID,
        opening: frozenset[str] | None = None,
        key: str | None = None,
    ) -> Doc:
        profile = views.get("profile", key or str(candidate_id), opening)
        if profile is None:
            raise AggregateMissingError("candidate", candidate_id)
        return profile

    def _missing(self, cmd: Reader, candidate_id: UUID, view: str) -> Exception:
        """What a read of a candidate the views do not hold raises. To a principal scoped
        to other candidates, the refusal any read outside its assignments gets, recorded as
        one (`principal-assignments`), so the answer does not tell whether the candidate
        exists (and the attempt is in the trail either way); to anyone else, not found, and
        nothing recorded: no one's data was asked for."""
        identity = current_identity()
        if identity is None or not identity.assignments or candidate_id in identity.assignments:
            return AggregateMissingError("candidate", candidate_id)
        refused = Access.record(
            candidate_id=candidate_id,
            principal=cmd.principal,
            role=cmd.role.value,
            purpose=cmd.purpose,
            view=view,
            returned=(),
            withheld=(),
            outcome=AccessOutcome.REFUSED,
            policy_ids=(ASSIGNMENTS_POLICY,),
            policy_set_hash=self.decision_point.policy_set_hash,
            consent_ids=(),
            authentication=authentication_now(receiving_now()),
        )
        return Unanswered([refused], AccessRefusedError(candidate_id, view, [ASSIGNMENTS_POLICY]))

    def _attempt(self, cmd: Reader, view: str, *subjects: UUID) -> Attempt:
        """How a read of `subjects` that fails before it is decided is recorded: failed, for
        why it failed, one record a subject (services/recording.py)."""
        policy_set = self.decision_point.policy_set_hash

        def attempt(why: str) -> list[Aggregate]:
            return [failed_attempt(cmd, s, view, why, policy_set) for s in subjects]

        return attempt

    def _record_failure(self, cmd: Reader, view: str, subject: UUID, error: Exception) -> Exception:
        """A read of `subject` stopped by `error` (READ_FAILURES) outside a decision, recorded
        as failed now; the error to raise, saying whether the record could be made."""
        why = failure_of(error)
        failed = Unanswered(self._attempt(cmd, view, subject)(why), recorded_failure(error))
        self._commit_failed(failed)
        return failed.error

    def _stored_subject(self, aggregate_id: UUID) -> UUID | None:
        """The candidate an aggregate's events are about, read in clear from its first stored
        event (when opening it is what failed)."""
        stored = self.recorder.select_events(aggregate_id, limit=1)
        subject = json.loads(stored[0].state).get("candidate_id") if stored else None
        return None if subject is None else UUID(str(subject))

    def _attempt_on(
        self, cmd: Reader, view: str, kind: type[Investigation | Report], aggregate_id: UUID
    ) -> Attempt:
        """As `_attempt`, for a read of an investigation or a report: whom it is about is
        taken from the event store, since the row that says so may be the altered one."""

        def attempt(why: str) -> list[Aggregate]:
            subject = self.load(kind, aggregate_id).candidate_id
            return self._attempt(cmd, view, subject)(why)

        return attempt

    def _read(
        self, cmd: ReadProfile | ReadProfiles, candidate_id: UUID, views: ReadModel
    ) -> tuple[Access, ProfileView, list[str], Callable[[str], Access], Doc]:
        """Decides one read of `candidate_id`'s profile, asked by `cmd`'s principal, and
        builds its access record and its answer (nothing saved), how to record it as failed
        instead, and the row it answers from. Raises Unanswered if a value it may return
        cannot be opened."""
        # decided on the row with every value still sealed; then only what may be returned
        # is decrypted
        key = str(candidate_id)
        sealed = views.get("profile", key, frozenset())
        if sealed is None:
            raise self._missing(cmd, candidate_id, "profile")
        categories = tuple(dict.fromkeys(f.category for _, f in profile_fields(sealed)))
        request = self._facts(cmd, candidate_id, categories, views, sealed)
        decision = decide_read(self.decision_point, request)
        allowed = frozenset(decision.allowed)

        def failed(why: str) -> Access:
            return access_record(cmd, candidate_id, "profile", request, decision, failed=why)

        # (if the row changed in between, the newer one is shown: still only allowed values)
        profile = (
            open_or_fail(
                lambda: self._profile(views, candidate_id, opening=allowed, key=key), failed
            )
            if allowed
            else sealed
        )
        access = access_record(cmd, candidate_id, "profile", request, decision)
        refused = decision.outcome is AccessOutcome.REFUSED and bool(categories)
        reasons = decision.withheld_because if refused else []
        # validated in one call, fields and all (cheaper than a FieldView built per field)
        view = ProfileView.model_validate(
            {
                "candidate_id": candidate_id,
                "access_id": access.id,
                "outcome": decision.outcome,
                "erased": profile["erased"],
                "erasure_requested": bool(profile.get("erasure_requested")),
                "fields": []
                if refused
                else [
                    {
                        "name": name,
                        "category": f.category,
                        "tier": tier_of(f.category).value,
                        "value": f.value if f.category in allowed else None,
                        "withheld": f.category not in allowed,
                    }
                    for name, f in profile_fields(profile)
                ],
                "refused_because": reasons,
            }
        )
        return access, view, reasons, failed, profile

    @use_case
    def read_profile(self, cmd: ReadProfile) -> ProfileView:
        """A candidate's identity and claims, showing only the categories the policies allow
        this principal for this purpose under the consent in force; the read is recorded first."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[ProfileView, list[str]]]:
            access, view, reasons, _, row = self._read(cmd, cmd.candidate_id, views)
            shows(row)  # the version of exactly what is answered
            return [access], (view, reasons)

        attempt = self._attempt(cmd, "profile", cmd.candidate_id)
        view, reasons = self._recorded(decide, attempt)  # durably recorded first; fails closed
        if view.outcome == AccessOutcome.REFUSED and reasons:
            raise AccessRefusedError(cmd.candidate_id, "profile", reasons)
        return view  # type: ignore[no-any-return]

    @use_case
    def read_profiles(self, cmd: ReadProfiles) -> ProfilesView:
        """Several candidates' profiles in one request, each decided as `read_profile` would
        and recorded with an access event of its own; the records are saved together before
        anything is returned. A refused candidate comes back empty with the reasons, and
        does not spoil the others. A profile that cannot be opened fails the whole read:
        nothing is returned, and every read in it is recorded as failed."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], ProfilesView]:
            reads, unanswered = [], []
            for candidate_id in dict.fromkeys(cmd.candidate_ids):
                try:
                    reads.append(self._read(cmd, candidate_id, views))
                except Unanswered as failed:
                    unanswered.append(failed)
            if unanswered:
                accesses = [a for u in unanswered for a in u.accesses]
                why = ReadFailure.WITH_ANOTHER.value  # nothing returned: another read failed
                raise Unanswered([*accesses, *(r[3](why) for r in reads)], unanswered[0].error)
            return [r[0] for r in reads], ProfilesView(profiles=[r[1] for r in reads])

        attempt = self._attempt(cmd, "profile", *dict.fromkeys(cmd.candidate_ids))
        return self._recorded(decide, attempt)  # type: ignore[no-any-return]  # all, or none

    @use_case
    def read_report(self, cmd: ReadReport) -> ReportView:
        """A report as the policies let this principal see it: an item whose check touches a
        category withheld from them comes back without outcome or note. A reviewer reads a
        report under review, a hiring manager what was disclosed to them; the read is
        recorded first."""
        decision_point = self.decision_point

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            report = views.get("report", str(cmd.report_id), frozenset())  # decided sealed
            if report is None:
                raise AggregateMissingError("report", cmd.report_id)
            subject = UUID(report["candidate_id"])
            profile = self._profile(views, subject, opening=frozenset())
            categories = tuple(sorted(report_categories(report)))
            request = replace(self._facts(cmd, subject, categories, views, profile), view="report")
            decision = decide_read(decision_point, request)
            view = f"report {cmd.report_id}"
            allowed = frozenset(decision.allowed)
            opened = open_or_fail(  # only the notes it may return are decrypted
                lambda: views.get("report", str(cmd.report_id), allowed) if allowed else None,
                lambda why: access_record(cmd, subject, view, request, decision, failed=why),
            )
            access = access_record(cmd, subject, view, request, decision)
            shows(opened or report)
            return [access], (opened or report, categories, decision, access.id)

        attempt = self._attempt_on(cmd, f"report {cmd.report_id}", Report, cmd.report_id)
        report, categories, decision, access_id = self._recorded(decide, attempt)
        return report_view(cmd.report_id, report, categories, decision, access_id)

    @use_case
    def read_investigation(self, cmd: ReadInvestigation) -> InvestigationView:
        """An investigation's status as the policies let this principal see it: a check whose
        categories are withheld comes back without its conclusion, and the candidate's
        feedback and disputes, with the answers to them, only to those who may read their
        categories (the candidate always). The read is recorded first."""
        decision_point = self.decision_point

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            key = str(cmd.investigation_id)
            sealed = views.get("investigation", key, frozenset())  # decided sealed
            if sealed is None:
                raise AggregateMissingError("investigation", cmd.investigation_id)
            subject = UUID(sealed["candidate_id"])
            profile = self._profile(views, subject, opening=frozenset())
            categories = tuple(sorted(investigation_categories(sealed)))
            request = self._facts(cmd, subject, categories, views, profile)
            request = replace(request, view="investigation")
            decision = decide_read(decision_point, request)
            view = f"investigation {key}"
            allowed = frozenset(decision.allowed)
            opened = open_or_fail(
                lambda: views.get("investigation", key, allowed) if allowed else None,
                lambda why: access_record(cmd, subject, view, request, decision, failed=why),
            )
            access = access_record(cmd, subject, view, request, decision)
            doc = opened if opened is not None else sealed
            shows(doc)
            return [access], (doc, subject, categories, decision, access.id)

        attempt = self._attempt_on(
            cmd, f"investigation {cmd.investigation_id}", Investigation, cmd.investigation_id
        )
        doc, subject, categories, decision, access_id = self._recorded(decide, attempt)
        if decision.outcome is AccessOutcome.REFUSED and categories:
            raise AccessRefusedError(
                subject,
                "investigation",
                decision.withheld_because,
                named=ASSIGNMENTS_POLICY not in decision.withheld_because,
            )
        return investigation_view(cmd.investigation_id, doc, subject, access_id, decision)
