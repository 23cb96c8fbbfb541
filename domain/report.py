"""Report: compiled from concluded checks inside consent scope, reviewed by someone else,
disclosed to named recipients, shared with the candidate, disputable, amendable, destroyable."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.access import Authenticated
from domain.caller import CALLER_UNKNOWN, ROLE_UNRECORDED
from domain.check import CheckSummary
from domain.classification import (
    CASE_NOTE,
    ERASED_VALUE,
    ORGANISATION,
    PersonalField,
    upcast_personal,
)
from domain.consent import ConsentScope
from domain.errors import (
    InvalidInputError,
    LegalHoldError,
    OpenDisputeError,
    ReportNotSharedWithCandidateError,
    ReportStateError,
    SelfReviewError,
    UnknownReportItemError,
)
from domain.investigation import CORRESPONDENCE, STATEMENT
from domain.report_parts import (
    RECIPIENT_ORGANISATION,
    AmendedItem,
    Amendment,
    Disclosure,
    Flag,
    ReportDispute,
    ReportGuards,
    ReportItem,
    ReportStatus,
    item_from,
    items_within,
    recipient_organisation,
)
from domain.screening import screen
from domain.subject import (
    CalledSinceV2,
    CreatedCalledSinceV2,
    FreeTextCalledSinceV3,
    FreeTextSinceV2,
    SubjectAggregate,
)

# the parts (domain/report_parts.py), named here too, where the rest of the code finds them
__all__ = [
    "NOTE_CATEGORY",
    "RECIPIENT_ORGANISATION",
    "AmendedItem",
    "Amendment",
    "Disclosure",
    "Flag",
    "Report",
    "ReportDispute",
    "ReportItem",
    "ReportStatus",
    "item_from",
]


NOTE_CATEGORY = "user.employment.evaluation"


class Report(ReportGuards, SubjectAggregate):
    class Disputed(FreeTextSinceV2):
        free_text = {"statement": ("statement", STATEMENT)}
        dispute_id: UUID
        check_id: UUID
        statement: PersonalField

    class DisputeRejected(FreeTextCalledSinceV3):
        free_text = {"response": ("response", CORRESPONDENCE)}
        dispute_id: UUID
        response: PersonalField
        answered_by: str

    class Amended(FreeTextSinceV2):
        """v2: the notes are personal values; v3: the reason too (it answers the candidate's
        dispute, as a rule in their words); v4: who called it, as authenticated."""

        class_version = 4
        authenticated: Authenticated
        upcast_v3_v4 = CALLER_UNKNOWN
        free_text = {}
        amendments: tuple[AmendedItem, ...]
        reason: PersonalField
        resolves: tuple[UUID, ...]
        amended_by: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            state["reason"] = upcast_personal(state.get("reason"), "reason", CORRESPONDENCE)

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            for change in state["amendments"]:
                change["note"] = upcast_personal(change["note"], "note", NOTE_CATEGORY)

    class Approved(FreeTextCalledSinceV3):
        """v2: the reviewer's comments a personal value (they speak of the candidate's
        findings; v1: in clear); v3: who called it, as authenticated."""

        free_text = {"comments": ("comments", NOTE_CATEGORY)}
        reviewer: str
        comments: PersonalField

    class ChangesRequested(FreeTextCalledSinceV3):
        """As Approved: v2 holds the comments as a personal value; v3 who called it."""

        free_text = {"comments": ("comments", NOTE_CATEGORY)}
        reviewer: str
        comments: PersonalField

    class LegalHoldPlaced(FreeTextCalledSinceV3):
        """v2: the reason sealed with the subject's data (v1: in clear), None: not kept; v3:
        who called it, as authenticated (`authenticated`)."""

        free_text = {"reason": ("reason", CASE_NOTE)}
        reason: PersonalField | None
        placed_by: str

    class Disclosed(SubjectAggregate.Event):
        """v2: the recipient's organisation a personal value (v1: in clear); v3: how who
        disclosed it was authenticated (`authenticated`); v4: their role (`role`; v3: None)."""

        class_version = 4
        disclosure: Disclosure
        authenticated: Authenticated
        role: str | None

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            disclosure = state["disclosure"]
            disclosure["organisation"] = upcast_personal(
                disclosure.get("organisation"), RECIPIENT_ORGANISATION, ORGANISATION
            )

        upcast_v2_v3 = CALLER_UNKNOWN
        upcast_v3_v4 = ROLE_UNRECORDED

    class Compiled(CreatedCalledSinceV2):
        investigation_id: UUID
        consent_id: UUID
        purposes: tuple[str, ...]
        items: tuple[ReportItem, ...]
        excluded_checks: tuple[UUID, ...]
        author: str

    class SharedWithCandidate(CalledSinceV2):
        edition: int
        shared_by: str

    class LegalHoldReleased(CalledSinceV2):
        released_by: str

    class Destroyed(CalledSinceV2):
        reason: str
        destroyed_by: str

    @classmethod
    def compile(
        cls,
        investigation_id: UUID,
        summaries: tuple[CheckSummary, ...],
        scope: ConsentScope,
        author: str,
    ) -> Report:
        """Only concluded checks the consent still covers go into a report; every item is
        flagged where it rests on one source, sources disagreed, or the candidate disputed it."""
        scope.require_active()
        items, excluded = items_within(summaries, scope)
        if not items:
            raise InvalidInputError("a report needs at least one concluded check within consent")
        return cls(
            candidate_id=scope.candidate_id,
            investigation_id=investigation_id,
            consent_id=scope.consent_id,
            purposes=scope.terms.purposes,
            items=items,
            excluded_checks=excluded,
            author=author,
        )

    @event(Compiled)
    def __init__(
        self,
        candidate_id: UUID,
        investigation_id: UUID,
        consent_id: UUID,
        purposes: tuple[str, ...],
        items: tuple[ReportItem, ...],
        excluded_checks: tuple[UUID, ...],
        author: str,
    ) -> None:
        self.candidate_id = candidate_id
        self.investigation_id = investigation_id
        self.consent_id = consent_id
        self.purposes = purposes
        self.items = {i.check_id: i for i in items}
        self.excluded_checks = excluded_checks
        self.authors = {author}
        self.status = ReportStatus.DRAFT
        self.edition = 1
        self.approved_by: str | None = None
        self.shared_edition = 0
        self.disclosures: list[Disclosure] = []
        self.disputes: dict[UUID, ReportDispute] = {}
        self.legal_hold: PersonalField | None = None  # the reason, while on hold

    def review(self, reviewer: str, approve: bool, comments: str) -> None:
        """Four eyes: nobody reviews a report they wrote or amended."""
        self._require_status(ReportStatus.DRAFT, "review")
        if reviewer in self.authors:
            raise SelfReviewError(self.id, reviewer)
        if not approve and not comments.strip():
            raise InvalidInputError("field 'comments': say what must change", field="comments")
        held = PersonalField("comments", NOTE_CATEGORY, comments)
        if approve:
            self._approve(reviewer, held)
        else:
            self._request_changes(reviewer, held)

    @event(Approved)
    def _approve(self, reviewer: str, comments: PersonalField) -> None:
        self.status = ReportStatus.APPROVED
        self.approved_by = reviewer

    @event(ChangesRequested)
    def _request_changes(self, reviewer: str, comments: PersonalField) -> None:
        self.status = ReportStatus.CHANGES_REQUESTED

    def disclose(
        self,
        scope: ConsentScope,
        recipient: str,
        recipient_role: str,
        purpose: str,
        disclosed_by: str,
        organisation: str | None = None,
        *,
        authenticated: Authenticated,
        role: str,
    ) -> None:
        """Only an approved report without open disputes goes out, to a named recipient, for a
        purpose the consent still allows; to another organisation only if the consent names
        it as a third party. `authenticated` and `role`: who disclosed it, as authenticated."""
        self._require_status(ReportStatus.APPROVED, "disclose")
        if self.open_disputes:
            raise OpenDisputeError(f"report {self.id}", self.open_disputes, "disclose it")
        if not recipient.strip():
            raise InvalidInputError("field 'recipient': name the recipient", field="recipient")
        scope.require_active()
        scope.require_purpose(purpose)
        held = recipient_organisation(organisation)
        scope.require_recipient(held)
        self._disclose(
            Disclosure(recipient, recipient_role, purpose, self.edition, disclosed_by, held),
            authenticated,
            role,
        )

    @event(Disclosed)
    def _disclose(self, disclosure: Disclosure, authenticated: Authenticated, role: str) -> None:
        self.disclosures.append(disclosure)

    def share_with_candidate(self, shared_by: str) -> None:
        """The candidate gets a copy of each approved edition (seed 001 §08)."""
        self._require_status(ReportStatus.APPROVED, "share with the candidate")
        if self.shared_edition == self.edition:
            raise ReportStateError(self.id, f"edition {self.edition} already shared", "share")
        self._share(self.edition, shared_by)

    @event(SharedWithCandidate)
    def _share(self, edition: int, shared_by: str) -> None:
        self.shared_edition = edition

    def dispute(self, dispute_id: UUID, check_id: UUID, statement: str) -> None:
        """The candidate disputes an item of the copy they received; it blocks disclosure."""
        self._require_not_destroyed("dispute")
        if self.shared_edition == 0:
            raise ReportNotSharedWithCandidateError(self.id)
        if check_id not in self.items:
            raise UnknownReportItemError(self.id, check_id)
        if not statement.strip():
            raise InvalidInputError("field 'statement': say what is wrong", field="statement")
        screen("statement", statement)
        self._dispute(dispute_id, check_id, PersonalField("statement", STATEMENT, statement))

    @event(Disputed)
    def _dispute(self, dispute_id: UUID, check_id: UUID, statement: PersonalField) -> None:
        self.disputes[dispute_id] = ReportDispute(dispute_id, check_id, statement.value)

    def reject_dispute(self, dispute_id: UUID, response: str, answered_by: str) -> None:
        """A dispute that does not change the report is answered, never ignored."""
        self._open_dispute(dispute_id)
        if not response.strip():
            raise InvalidInputError("field 'response': answer the candidate", field="response")
        screen("response", response)
        self._reject_dispute(
            dispute_id, PersonalField("response", CORRESPONDENCE, response), answered_by
        )

    @event(DisputeRejected)
    def _reject_dispute(self, dispute_id: UUID, response: PersonalField, answered_by: str) -> None:
        self.disputes[dispute_id] = replace(self.disputes[dispute_id], resolved=True)

    def amend(
        self,
        amendments: tuple[Amendment, ...],
        reason: str,
        resolves: tuple[UUID, ...],
        amended_by: str,
    ) -> None:
        """An amendment makes a new edition that must be reviewed again before it goes out."""
        self._require_not_destroyed("amend")
        if not amendments or not reason.strip():
            raise InvalidInputError("an amendment needs at least one change and a reason")
        for a in amendments:
            if a.check_id not in self.items:
                raise UnknownReportItemError(self.id, a.check_id)
        for dispute_id in resolves:
            self._open_dispute(dispute_id)
        for a in amendments:
            screen("note", a.note)
        recorded = tuple(
            AmendedItem(a.check_id, a.outcome, PersonalField("note", NOTE_CATEGORY, a.note))
            for a in amendments
        )
        self._amend(recorded, PersonalField("reason", CORRESPONDENCE, reason), resolves, amended_by)

    @event(Amended)
    def _amend(
        self,
        amendments: tuple[AmendedItem, ...],
        reason: PersonalField,
        resolves: tuple[UUID, ...],
        amended_by: str,
    ) -> None:
        for a in amendments:
            item = self.items[a.check_id]
            flags = item.flags if Flag.AMENDED in item.flags else (*item.flags, Flag.AMENDED)
            self.items[a.check_id] = replace(
                item, outcome=a.outcome, note=a.note.value, flags=flags
            )
        for dispute_id in resolves:
            self.disputes[dispute_id] = replace(self.disputes[dispute_id], resolved=True)
        self.authors.add(amended_by)
        self.edition += 1
        self.status = ReportStatus.DRAFT
        self.approved_by = None

    def reissue(self, reissued_by: str) -> None:
        """A reviewed amendment goes back to the candidate as a new edition."""
        if self.edition == 1:
            raise ReportStateError(self.id, "in its first edition", "reissue (share it instead)")
        self.share_with_candidate(reissued_by)

    def place_legal_hold(self, reason: str, placed_by: str, *, reason_kept: bool = True) -> None:
        """`reason_kept`: False once the subject's case-note key is gone (decision 0041)."""
        self._require_not_destroyed("place a legal hold")
        self._place_hold(
            PersonalField("reason", CASE_NOTE, reason) if reason_kept else None, placed_by
        )

    @event(LegalHoldPlaced)
    def _place_hold(self, reason: PersonalField | None, placed_by: str) -> None:
        self.legal_hold = reason or PersonalField("reason", CASE_NOTE, ERASED_VALUE)

    def release_legal_hold(self, released_by: str) -> None:
        if self.legal_hold is None:
            raise ReportStateError(self.id, "not on legal hold", "release a legal hold")
        self._release_hold(released_by)

    @event(LegalHoldReleased)
    def _release_hold(self, released_by: str) -> None:
        self.legal_hold = None

    def destroy(self, reason: str, destroyed_by: str) -> None:
        """Destroyed at retention end, never while on legal hold."""
        self._require_not_destroyed("destroy")
        if self.legal_hold is not None:
            raise LegalHoldError(self.id)
        self._destroy(reason, destroyed_by)

    @event(Destroyed)
    def _destroy(self, reason: str, destroyed_by: str) -> None:
        self.items = {}
        self.status = ReportStatus.DESTROYED
