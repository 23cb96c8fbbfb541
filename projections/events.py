"""The domain's event classes, named once for the read side, which dispatches on them.

Most events are declared by decorating a method (`@event("Cancelled")`): the class exists on
the aggregate, but a type checker cannot see it. Each is named here once, typed, and every
projection and service keys its tables on these classes, never on names: an event renamed in
the domain fails here, at import, instead of being silently ignored by every view. The classes
themselves, their topics and what they store are the domain's; nothing here renames them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.access import Access, DataDisclosure
from domain.candidate import Candidate
from domain.consent import Consent
from domain.duty import DutyRun
from domain.intake import CommandReceipt
from domain.investigation import Investigation
from domain.master_key import MasterKeyRotation
from domain.migration import StoreMigration
from domain.principal import Principal
from domain.redrive import DeadLetterRedrive
from domain.report import Report
from domain.sender import SenderRefusal

# Most events are about a data subject (domain/subject.py); a principal's are not.
EventClass = type[Aggregate.Event]

# The classes declared by `@event("...")` are made when their aggregate class is: attributes
# mypy cannot see (hence each `type: ignore[attr-defined]`), checked at import all the same.
CandidateRegistered: EventClass = Candidate.Registered
ClaimsSubmitted: EventClass = Candidate.ClaimsSubmitted
ErasureRequested: EventClass = Candidate.ErasureRequested
TierShredded: EventClass = Candidate.TierShredded  # type: ignore[attr-defined]
CategoriesShredded: EventClass = Candidate.CategoriesShredded  # type: ignore[attr-defined]
CandidateErased: EventClass = Candidate.Erased

ConsentRequested: EventClass = Consent.Requested
ConsentGranted: EventClass = Consent.Granted
ConsentWithdrawn: EventClass = Consent.Withdrawn
ConsentExpired: EventClass = Consent.Expired
ConsentReliedUpon: EventClass = Consent.ReliedUpon  # type: ignore[attr-defined]

InvestigationPlanned: EventClass = Investigation.Planned
CandidateNotified: EventClass = Investigation.CandidateNotified
InvestigatorAssigned: EventClass = Investigation.InvestigatorAssigned
InvestigationStarted: EventClass = Investigation.Started
FindingRecorded: EventClass = Investigation.FindingRecorded
CheckConcluded: EventClass = Investigation.CheckConcluded
FeedbackGiven: EventClass = Investigation.FeedbackGiven
FeedbackAnswered: EventClass = Investigation.FeedbackAnswered
DisputeRaised: EventClass = Investigation.DisputeRaised
DisputeResolved: EventClass = Investigation.DisputeResolved
InvestigationSuspended: EventClass = Investigation.Suspended  # type: ignore[attr-defined]
InvestigationResumed: EventClass = Investigation.Resumed
InvestigationCompleted: EventClass = Investigation.Completed
InvestigationCancelled: EventClass = Investigation.Cancelled

ReportCompiled: EventClass = Report.Compiled
ReportApproved: EventClass = Report.Approved
ChangesRequested: EventClass = Report.ChangesRequested
ReportDisclosed: EventClass = Report.Disclosed
SharedWithCandidate: EventClass = Report.SharedWithCandidate
ReportDisputed: EventClass = Report.Disputed
ReportDisputeRejected: EventClass = Report.DisputeRejected
ReportAmended: EventClass = Report.Amended
LegalHoldPlaced: EventClass = Report.LegalHoldPlaced
LegalHoldReleased: EventClass = Report.LegalHoldReleased
ReportDestroyed: EventClass = Report.Destroyed

AccessRecorded: EventClass = Access.Recorded
DataDisclosed: EventClass = DataDisclosure.DataDisclosed
CommandApplied: EventClass = CommandReceipt.Applied

PrincipalAdded: EventClass = Principal.Added
PrincipalTokenRotated: EventClass = Principal.TokenRotated
PrincipalRevoked: EventClass = Principal.Revoked
SenderKeyIssued: EventClass = Principal.SenderKeyIssued
SenderKeyRotated: EventClass = Principal.SenderKeyRotated
SenderKeyRevoked: EventClass = Principal.SenderKeyRevoked
PortalSessionOpened: EventClass = Principal.SessionOpened
PortalSessionClosed: EventClass = Principal.SessionClosed
SenderRefused: EventClass = SenderRefusal.Refused  # type: ignore[attr-defined]
# A principal's events, and the refusals of senders, are about no data subject: no subject's
# view or row changes with them.
PRINCIPAL_EVENTS: frozenset[EventClass] = frozenset(
    {
        PrincipalAdded,
        PrincipalTokenRotated,
        PrincipalRevoked,
        SenderKeyIssued,
        SenderKeyRotated,
        SenderKeyRevoked,
        PortalSessionOpened,
        PortalSessionClosed,
        SenderRefused,
    }
)

DutyClaimed: EventClass = DutyRun.Claimed  # type: ignore[attr-defined]
DutyTakenOver: EventClass = DutyRun.TakenOver  # type: ignore[attr-defined]
DutyFinished: EventClass = DutyRun.Finished  # type: ignore[attr-defined]
# A scheduled duty's runs (domain/duty.py) are about no data subject either.
DUTY_EVENTS: frozenset[EventClass] = frozenset({DutyClaimed, DutyTakenOver, DutyFinished})
LetterRedriven: EventClass = DeadLetterRedrive.Redriven
LetterRedrivenAgain: EventClass = DeadLetterRedrive.RedrivenAgain
RotationStarted: EventClass = MasterKeyRotation.Started  # type: ignore[attr-defined]
RotationStartedAgain: EventClass = MasterKeyRotation.StartedAgain  # type: ignore[attr-defined]
RotationFinished: EventClass = MasterKeyRotation.Finished  # type: ignore[attr-defined]
RotationAbandoned: EventClass = MasterKeyRotation.Abandoned  # type: ignore[attr-defined]
StoreMigrated: EventClass = StoreMigration.Migrated
# An operator's redrives of dead letters, master key rotations, and a store's migration record
# (the first event of the store it was copied into): about no data subject either.
OPERATOR_EVENTS: frozenset[EventClass] = frozenset(
    {
        LetterRedriven,
        LetterRedrivenAgain,
        RotationStarted,
        RotationStartedAgain,
        RotationFinished,
        RotationAbandoned,
        StoreMigrated,
    }
)

# Events that change nothing but the access log: no read decision rests on them.
LOG_ONLY_EVENTS: tuple[EventClass, ...] = (AccessRecorded, DataDisclosed)


# Every aggregate whose events the store holds.
AGGREGATES: tuple[type[Aggregate], ...] = (
    Candidate,
    Consent,
    Investigation,
    Report,
    Access,
    DataDisclosure,
    CommandReceipt,
    Principal,
    SenderRefusal,
    DutyRun,
    DeadLetterRedrive,
    MasterKeyRotation,
    StoreMigration,
)


@functools.cache
def stored_event_types() -> Mapping[str, EventClass]:
    """Every event class the store may hold, by its topic (`domain.candidate:Candidate.Registered`):
    what each aggregate declares, and its `Created` event. The only topics a stored event or a
    relayed message may name; a topic is resolved here, never by importing the module it names
    (a message on the events topic could name any)."""
    found: dict[str, EventClass] = {}
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if isinstance(value, type) and issubclass(value, aggregate.Event) and name != "Event":
                found[get_topic(value)] = value
    return found
