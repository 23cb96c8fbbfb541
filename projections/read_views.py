"""The read views the query service answers from, one per question:

    profile        a candidate's identity and claims (personal values, sealed at rest)
    consent        the consent register: terms, window, withdrawal, per consent
    investigation  an investigation's status, team and the data categories its checks touch
    report         a report's status, edition, items (outcome and flags), disclosures, hold
    access         the subject's access log: reads, refusals and disclosures (no values)
    list:…         paged lists of candidates, investigations, reports by status (no values;
                   projections/listing.py)
    list:refusal:… the refused reads by day, principal and policy (no values; access_log.py)

Built from events alone, never by loading aggregates; every handler is a pure function of the
event and the current row, so the views rebuilt from the start of the log come out identical.
Erasure and shredding overwrite personal values in the views themselves, not only their keys.
Handlers are found by the event's class (projections/events.py), and statuses are written as
the domain's status enums' values, so a renamed event or status fails a test, not a read.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from domain.classification import Tier
from domain.investigation import InvestigationStatus
from projections import events as ev
from projections.access_log import (
    LOG_VIEW,
    READS_PREFIX,
    REFUSAL_PREFIX,
    list_refusal,
    log_data_disclosure,
    log_read,
)
from projections.documents import Shred, iso, keyed, plain, shred_nested, shred_profile
from projections.events import LOG_ONLY_EVENTS, EventClass
from projections.listing import LIST_VIEWS, Listing
from projections.report_view import ReportHandlers
from projections.rows import Doc, Rows, ident
from projections.versions import PRINCIPAL_CHANGES, PRINCIPAL_VIEW, keep_version, principal_changed

__all__ = [
    "LOG_ONLY_EVENTS",
    "LOG_VIEW",
    "PLAIN_PREFIXES",
    "PLAIN_VIEWS",
    "PRINCIPAL_VIEW",
    "VIEWS",
    "ReadViews",
    "plain",
]

VIEWS = ("profile", "consent", "investigation", "report", LOG_VIEW, PRINCIPAL_VIEW)
# Views whose rows never hold a personal value: the access log names categories, not values;
# a principal's row, its version alone.
PLAIN_VIEWS = frozenset({LOG_VIEW, PRINCIPAL_VIEW}) | LIST_VIEWS
# ... and the views named per day (and principal, policy), or listing the reads by time
# (and principal), known by the start of their name.
PLAIN_PREFIXES = (REFUSAL_PREFIX, READS_PREFIX)

Handler = Callable[[Any, Rows], None]

# Events whose only effect on the investigation view is its status (and time of change);
# suspension and resumption keep where work was, below.
_INVESTIGATION_STATUS: dict[EventClass, InvestigationStatus] = {
    ev.InvestigationStarted: InvestigationStatus.IN_PROGRESS,
    ev.InvestigationCompleted: InvestigationStatus.COMPLETED,
    ev.InvestigationCancelled: InvestigationStatus.CANCELLED,
}


class ReadViews(ReportHandlers):
    """Applies one event to the rows it concerns; `handlers` names, by class, the events that
    change a view, and `ignores` those that change none (tests hold the two to the domain)."""

    # Bumped whenever what a row holds changes: views of another version are rebuilt.
    # 4: the access log names how each reader was authenticated; the list views (listing.py)
    # 5: the refused reads listed by day, principal and policy (access_log.py)
    # 6: an investigation resumes to where it was suspended from, and an upheld dispute
    #    reopens a completed one (as the domain does)
    # 7: consent terms, findings' sources and disclosures' organisations hold personal values
    #    (decision "everything identifying sealed"): the consent register is shredded on
    #    erasure too; the access log names no third party
    # 8: a profile's, an investigation's and a report's row keep their aggregate's version,
    #    and a principal has a row of its version (projections/versions.py)
    # 9: the access log names the deciding policies, the consents relied on and a break-glass
    #    justification, a disclosure's own id and no made-up role; every read and disclosure
    #    is listed by time (and principal, refused: access_log.py); a consent's row holds the
    #    signed document's hash
    # 10: a report's legal hold keeps its reason as a personal value, sealed with the
    #    candidate's data (decision 0041, extended): rows before held it in clear; the access
    #    log says why a failed read failed (`failure`)
    # 11: a value keeps the envelope its event was stored with, saying where it was sealed
    #    (decision 0048): rows before held it sealed for the row
    version = 11
    # Every row belongs to the subject of the events that change it: a worker applies each
    # partition's candidates apart from the others'.
    shared_rows = False
    ignores: frozenset[EventClass] = frozenset(
        {
            ev.CommandApplied,
            *(ev.PRINCIPAL_EVENTS - PRINCIPAL_CHANGES),
            *ev.DUTY_EVENTS,
            *ev.OPERATOR_EVENTS,
        }
    )

    def __init__(self) -> None:
        self.position = 0
        self.listing = Listing()  # every event it lists by is one handled here too
        self.handlers: dict[EventClass, Handler] = {
            ev.CandidateRegistered: self.candidate_registered,
            ev.ClaimsSubmitted: self.claims_submitted,
            ev.ErasureRequested: self.erasure_requested,
            ev.TierShredded: self.tier_shredded,
            ev.CategoriesShredded: self.categories_shredded,
            ev.CandidateErased: self.candidate_erased,
            ev.ConsentRequested: self.consent_requested,
            ev.ConsentGranted: self.consent_granted,
            ev.ConsentWithdrawn: self.consent_withdrawn,
            ev.ConsentExpired: self.consent_expired,
            ev.ConsentReliedUpon: self.consent_relied_upon,
            ev.InvestigationPlanned: self.investigation_planned,
            ev.InvestigatorAssigned: self.investigator_assigned,
            ev.FindingRecorded: self.finding_recorded,
            ev.CheckConcluded: self.check_concluded,
            ev.FeedbackGiven: self.feedback_given,
            ev.FeedbackAnswered: self.feedback_answered,
            ev.DisputeRaised: self.dispute_raised,
            ev.DisputeResolved: self.dispute_resolved,
            ev.InvestigationSuspended: self.investigation_suspended,
            ev.InvestigationResumed: self.investigation_resumed,
            **{
                cls: partial(self.investigation_status, status)
                for cls, status in _INVESTIGATION_STATUS.items()
            },
            ev.ReportCompiled: self.report_compiled,
            ev.ReportApproved: self.report_approved,
            ev.ChangesRequested: self.changes_requested,
            ev.ReportDisclosed: self.report_disclosed,
            ev.SharedWithCandidate: self.shared_with_candidate,
            ev.ReportDisputed: self.report_disputed,
            ev.ReportDisputeRejected: self.report_dispute_rejected,
            ev.ReportAmended: self.report_amended,
            ev.LegalHoldPlaced: self.legal_hold_placed,
            ev.LegalHoldReleased: self.legal_hold_released,
            ev.ReportDestroyed: self.report_destroyed,
            ev.AccessRecorded: self.access_recorded,
            ev.DataDisclosed: lambda event, rows: log_data_disclosure(rows, event, self.position),
            # only the investigation's version changes (`keep_version`)
            ev.CandidateNotified: lambda event, rows: None,
            **dict.fromkeys(PRINCIPAL_CHANGES, principal_changed),
        }

    def process(self, event: Any, rows: Rows, position: int) -> None:
        """`position` is the event's place in the notification log; the access log is
        ordered by it (two reads can carry the same timestamp)."""
        self.position = position
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event, rows)
            self.listing.process(event, rows)
            keep_version(event, rows)

    def access_recorded(self, event: Any, rows: Rows) -> None:
        log_read(rows, event, self.position)
        list_refusal(rows, event, self.position)

    # --- profile --------------------------------------------------------------------------

    def _profile(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        doc = rows.get("profile", ident(event.candidate_id))
        if doc is None:
            return
        change(doc)
        rows.put("profile", ident(event.candidate_id), event.candidate_id, doc)

    def candidate_registered(self, event: Any, rows: Rows) -> None:
        doc: Doc = {
            "candidate_id": ident(event.candidate_id),
            "registered_by": event.registered_by,
            "registered_at": iso(event.timestamp),
            "identity": list(event.identity),
            "claims": [],
            "erasure_requested": False,
            "erased": False,
            "shredded_tiers": [],
        }
        rows.put("profile", ident(event.candidate_id), event.candidate_id, doc)

    def claims_submitted(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["claims"] += [
                {"claim_id": str(c.claim_id), "kind": c.kind.value, "fields": list(c.fields)}
                for c in event.claims
            ]

        self._profile(event, rows, change)

    def erasure_requested(self, event: Any, rows: Rows) -> None:
        self._profile(event, rows, lambda doc: doc.update(erasure_requested=True))

    def tier_shredded(self, event: Any, rows: Rows) -> None:
        tier = Tier(event.tier)
        self._profile(event, rows, lambda doc: shred_profile(doc, tier))
        self._shred_cases(event, rows, tier)

    def categories_shredded(self, event: Any, rows: Rows) -> None:
        categories = frozenset(str(c) for c in event.categories)
        self._profile(event, rows, lambda doc: shred_profile(doc, categories))
        self._shred_cases(event, rows, categories)

    def candidate_erased(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            shred_profile(doc, None)
            doc["erased"] = True

        self._profile(event, rows, change)
        self._shred_cases(event, rows, None)

    def _shred_cases(self, event: Any, rows: Rows, tier: Shred) -> None:
        for view in ("consent", "investigation", "report"):
            for row_key, doc in keyed(rows, view, event.candidate_id):
                shred_nested(doc, tier)
                rows.put(view, row_key, event.candidate_id, doc)

    # --- consent register -----------------------------------------------------------------

    def _consent(self, event: Any, rows: Rows, **changes: Any) -> None:
        key = str(event.originator_id)
        doc = rows.get("consent", key)
        if doc is None:
            return
        doc.update(changes)
        rows.put("consent", key, event.candidate_id, doc)

    def consent_requested(self, event: Any, rows: Rows) -> None:
        doc: Doc = {
            "consent_id": str(event.originator_id),
            "requested_by": event.requested_by,
            "requested_at": iso(event.timestamp),
            "terms": plain(event.terms),
            "granted": False,
            "valid_from": None,
            "valid_until": None,
            "withdrawn_at": None,
            "expired": False,
            "relied_on_by": [],
            "document_sha256": None,
        }
        rows.put("consent", str(event.originator_id), event.candidate_id, doc)

    def consent_granted(self, event: Any, rows: Rows) -> None:
        self._consent(
            event,
            rows,
            terms=plain(event.terms),
            granted=True,
            valid_from=iso(event.valid_from),
            valid_until=iso(event.valid_until),
            document_sha256=event.document_sha256,
        )

    def consent_withdrawn(self, event: Any, rows: Rows) -> None:
        self._consent(event, rows, withdrawn_at=iso(event.withdrawn_at))

    def consent_expired(self, event: Any, rows: Rows) -> None:
        self._consent(event, rows, expired=True)

    def consent_relied_upon(self, event: Any, rows: Rows) -> None:
        key = str(event.originator_id)
        doc = rows.get("consent", key)
        if doc is not None:
            doc["relied_on_by"].append(str(event.investigation_id))
            rows.put("consent", key, event.candidate_id, doc)

    # --- investigation status -------------------------------------------------------------

    def _investigation(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        key = str(event.originator_id)
        doc = rows.get("investigation", key)
        if doc is None:
            return
        change(doc)
        doc["updated_at"] = iso(event.timestamp)
        rows.put("investigation", key, event.candidate_id, doc)

    def investigation_planned(self, event: Any, rows: Rows) -> None:
        doc: Doc = {
            "investigation_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "consent_id": str(event.consent_id),
            "purpose": event.purpose,
            "status": InvestigationStatus.PLANNED.value,
            "planned_by": event.planned_by,
            "investigators": sorted(set(event.investigators)),
            "checks": {
                str(c.check_id): {"check_type": c.check_type.value, "concluded": None}
                for c in event.checks
            },
            "categories": sorted({k for c in event.checks for k in c.check_type.categories}),
            "due_by": iso(event.due_by),
            "findings": 0,
            "feedback": [],
            "disputes": {},
            "updated_at": iso(event.timestamp),
        }
        rows.put("investigation", str(event.originator_id), event.candidate_id, doc)

    def investigator_assigned(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["investigators"] = sorted({*doc["investigators"], event.investigator})

        self._investigation(event, rows, change)

    def finding_recorded(self, event: Any, rows: Rows) -> None:
        self._investigation(event, rows, lambda doc: doc.update(findings=doc["findings"] + 1))

    def check_concluded(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            check = doc["checks"][str(event.conclusion.check_id)]
            check["concluded"] = event.conclusion.outcome.value

        self._investigation(event, rows, change)

    def feedback_given(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["feedback"].append(
                {"feedback_id": str(event.feedback_id), "text": event.text, "answer": None}
            )

        self._investigation(event, rows, change)

    def feedback_answered(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            for item in doc["feedback"]:
                if item["feedback_id"] == str(event.feedback_id):
                    item["answer"] = event.answer

        self._investigation(event, rows, change)

    def dispute_raised(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)] = {
                "check_id": str(event.check_id),
                "statement": event.statement,
                "response": None,
                "upheld": None,
            }

        self._investigation(event, rows, change)

    def dispute_resolved(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            dispute = doc["disputes"][str(event.dispute_id)]
            dispute.update(response=event.response, upheld=event.upheld)
            if event.upheld:
                doc["checks"][dispute["check_id"]]["concluded"] = None
                if doc["status"] == InvestigationStatus.COMPLETED.value:
                    doc["status"] = InvestigationStatus.IN_PROGRESS.value  # verified again

        self._investigation(event, rows, change)

    def investigation_suspended(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["suspended_from"] = doc["status"]
            doc["status"] = InvestigationStatus.SUSPENDED.value

        self._investigation(event, rows, change)

    def investigation_resumed(self, event: Any, rows: Rows) -> None:
        """Work goes back to where it was suspended from: planned, or in progress."""

        def change(doc: Doc) -> None:
            back = doc.pop("suspended_from", None) or InvestigationStatus.IN_PROGRESS.value
            doc["status"] = back
            doc["consent_id"] = str(event.scope.consent_id)  # the consent it goes on under

        self._investigation(event, rows, change)

    def investigation_status(self, status: InvestigationStatus, event: Any, rows: Rows) -> None:
        self._investigation(event, rows, lambda doc: doc.update(status=status.value))
