"""The public names of backcheck's events: the one table from stored topics to what Kafka says.

A stored event names its class by module path (`domain.candidate:Candidate.Registered`): the
event store needs that, and it must never change (tests/unit/test_persisted_names.py). It is no
name for other services: it moves with the code, and it says nothing of the version of the
event's shape. On the events topic each event's `ce_type` is its public name instead,

    backcheck.<aggregate>.<event>.v<class_version>     e.g. backcheck.consent.granted.v3

the base written once in `PUBLIC_NAMES` below (a test holds every stored topic to exactly one,
and no two to the same), the version the event class's current `class_version` (eventsourcing's,
1 unless the class says otherwise). A message always carries its class's *current* version:
a stored event written by older code is upcast by the class's own upcasters before it is
published (`published`), so a consumer reads one shape per name, the one the AsyncAPI document
(`infra/contract/`) describes. Already current (most events: every version-1 class, and every
event stored since its class's last bump), nothing is parsed: the state goes out as stored.

The projection workers accept the public names of every version up to the current one (their
mapper upcasts what is older), and the stored topics too: a topic published before these names
existed still replays into a new worker. Anything else stays an unknown type (a dead letter).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from projections.events import EventClass, stored_event_types

# stored topic -> public name without its version. Never change a right-hand side: consumers
# subscribe to it. A new event class gets a new line here (the contract test asks for one).
PUBLIC_NAMES: Mapping[str, str] = {
    "domain.access:Access.Created": "backcheck.access-log.created",
    "domain.access:Access.Recorded": "backcheck.access-log.access-recorded",
    "domain.access:DataDisclosure.Created": "backcheck.disclosure-log.created",
    "domain.access:DataDisclosure.DataDisclosed": "backcheck.disclosure-log.data-disclosed",
    "domain.candidate:Candidate.CategoriesShredded": "backcheck.candidate.categories-shredded",
    "domain.candidate:Candidate.ClaimsSubmitted": "backcheck.candidate.claims-submitted",
    "domain.candidate:Candidate.Created": "backcheck.candidate.created",
    "domain.candidate:Candidate.Erased": "backcheck.candidate.erased",
    "domain.candidate:Candidate.ErasureRequested": "backcheck.candidate.erasure-requested",
    "domain.candidate:Candidate.Registered": "backcheck.candidate.registered",
    "domain.candidate:Candidate.TierShredded": "backcheck.candidate.tier-shredded",
    "domain.consent:Consent.Created": "backcheck.consent.created",
    "domain.consent:Consent.Expired": "backcheck.consent.expired",
    "domain.consent:Consent.Granted": "backcheck.consent.granted",
    "domain.consent:Consent.ReliedUpon": "backcheck.consent.relied-upon",
    "domain.consent:Consent.Requested": "backcheck.consent.requested",
    "domain.consent:Consent.Withdrawn": "backcheck.consent.withdrawn",
    "domain.duty:DutyRun.Claimed": "backcheck.duty-run.claimed",
    "domain.duty:DutyRun.Created": "backcheck.duty-run.created",
    "domain.duty:DutyRun.Finished": "backcheck.duty-run.finished",
    "domain.duty:DutyRun.TakenOver": "backcheck.duty-run.taken-over",
    "domain.intake:CommandReceipt.Applied": "backcheck.command-receipt.applied",
    "domain.intake:CommandReceipt.Created": "backcheck.command-receipt.created",
    "domain.investigation:Investigation.Cancelled": "backcheck.investigation.cancelled",
    "domain.investigation:Investigation.CandidateNotified": (
        "backcheck.investigation.candidate-notified"
    ),
    "domain.investigation:Investigation.CheckConcluded": "backcheck.investigation.check-concluded",
    "domain.investigation:Investigation.Completed": "backcheck.investigation.completed",
    "domain.investigation:Investigation.Created": "backcheck.investigation.created",
    "domain.investigation:Investigation.DisputeRaised": "backcheck.investigation.dispute-raised",
    "domain.investigation:Investigation.DisputeResolved": (
        "backcheck.investigation.dispute-resolved"
    ),
    "domain.investigation:Investigation.FeedbackAnswered": (
        "backcheck.investigation.feedback-answered"
    ),
    "domain.investigation:Investigation.FeedbackGiven": "backcheck.investigation.feedback-given",
    "domain.investigation:Investigation.FindingRecorded": (
        "backcheck.investigation.finding-recorded"
    ),
    "domain.investigation:Investigation.InvestigatorAssigned": (
        "backcheck.investigation.investigator-assigned"
    ),
    "domain.investigation:Investigation.Planned": "backcheck.investigation.planned",
    "domain.investigation:Investigation.Resumed": "backcheck.investigation.resumed",
    "domain.investigation:Investigation.Started": "backcheck.investigation.started",
    "domain.investigation:Investigation.Suspended": "backcheck.investigation.suspended",
    "domain.master_key:MasterKeyRotation.Abandoned": "backcheck.master-key-rotation.abandoned",
    "domain.master_key:MasterKeyRotation.Created": "backcheck.master-key-rotation.created",
    "domain.master_key:MasterKeyRotation.Finished": "backcheck.master-key-rotation.finished",
    "domain.master_key:MasterKeyRotation.Started": "backcheck.master-key-rotation.started",
    "domain.master_key:MasterKeyRotation.StartedAgain": (
        "backcheck.master-key-rotation.started-again"
    ),
    "domain.migration:StoreMigration.Created": "backcheck.store-migration.created",
    "domain.migration:StoreMigration.Migrated": "backcheck.store-migration.migrated",
    "domain.principal:Principal.Added": "backcheck.principal.added",
    "domain.principal:Principal.Created": "backcheck.principal.created",
    "domain.principal:Principal.Revoked": "backcheck.principal.revoked",
    "domain.principal:Principal.SenderKeyIssued": "backcheck.principal.sender-key-issued",
    "domain.principal:Principal.SenderKeyRevoked": "backcheck.principal.sender-key-revoked",
    "domain.principal:Principal.SenderKeyRotated": "backcheck.principal.sender-key-rotated",
    "domain.principal:Principal.SessionClosed": "backcheck.principal.session-closed",
    "domain.principal:Principal.SessionOpened": "backcheck.principal.session-opened",
    "domain.principal:Principal.TokenRotated": "backcheck.principal.token-rotated",
    "domain.redrive:DeadLetterRedrive.Created": "backcheck.dead-letter-redrive.created",
    "domain.redrive:DeadLetterRedrive.Redriven": "backcheck.dead-letter-redrive.redriven",
    "domain.redrive:DeadLetterRedrive.RedrivenAgain": (
        "backcheck.dead-letter-redrive.redriven-again"
    ),
    "domain.report:Report.Amended": "backcheck.report.amended",
    "domain.report:Report.Approved": "backcheck.report.approved",
    "domain.report:Report.ChangesRequested": "backcheck.report.changes-requested",
    "domain.report:Report.Compiled": "backcheck.report.compiled",
    "domain.report:Report.Created": "backcheck.report.created",
    "domain.report:Report.Destroyed": "backcheck.report.destroyed",
    "domain.report:Report.Disclosed": "backcheck.report.disclosed",
    "domain.report:Report.DisputeRejected": "backcheck.report.dispute-rejected",
    "domain.report:Report.Disputed": "backcheck.report.disputed",
    "domain.report:Report.LegalHoldPlaced": "backcheck.report.legal-hold-placed",
    "domain.report:Report.LegalHoldReleased": "backcheck.report.legal-hold-released",
    "domain.report:Report.SharedWithCandidate": "backcheck.report.shared-with-candidate",
    "domain.sender:SenderRefusal.Created": "backcheck.sender-refusal.created",
    "domain.sender:SenderRefusal.Refused": "backcheck.sender-refusal.refused",
}


@dataclass(frozen=True)
class EventType:
    """One event class as published: its stored topic, public name (with the version), class
    and current version, and the stored state's ending when it is of that version."""

    topic: str
    public: str
    cls: EventClass
    version: int
    current_end: bytes  # `"class_version":N}`: how the mapper ends a state of version N > 1
    current: re.Pattern[bytes]  # the same anywhere (PostgreSQL's jsonb orders keys, adds a space)

    def upcast(self, state: bytes) -> bytes:
        """`state` (as stored) in the class's current version: unchanged if it is already."""
        if self.version == 1 or state.endswith(self.current_end):
            return state  # version 1 has no older shape; the mapper writes class_version last
        if self.current.search(state):  # only a key is followed by a colon; no nested one has it
            return state
        parsed: dict[str, Any] = orjson.loads(state)
        found = parsed.pop("class_version", 1)
        if found == self.version:
            return state
        while found < self.version:  # the class's own upcasters, as the store's mapper runs them
            getattr(self.cls, f"upcast_v{found}_v{found + 1}")(parsed)
            found += 1
        parsed["class_version"] = self.version
        return orjson.dumps(parsed)


def public_name(topic: str, version: int) -> str:
    return f"{PUBLIC_NAMES[topic]}.v{version}"


@functools.cache
def event_types() -> Mapping[str, EventType]:
    """Every event class the store may hold, by stored topic, as it is published."""
    found: dict[str, EventType] = {}
    for topic, cls in stored_event_types().items():
        version = int(getattr(cls, "class_version", 1))
        found[topic] = EventType(
            topic,
            public_name(topic, version),
            cls,
            version,
            b'"class_version":%d}' % version,
            re.compile(rb'"class_version": ?%d[,}]' % version),
        )
    return found


def published(topic: str, state: bytes) -> tuple[str, bytes]:
    """The `ce_type` and value of a stored event's message: its public name and its state in
    the current version. A topic that is no event of the domain (never stored: the mapper
    refuses it) goes out under its own name, for the workers to dead-letter."""
    found = event_types().get(topic)
    if found is None:
        return topic, state
    return found.public, found.upcast(state)


@functools.cache
def accepted_types() -> Mapping[str, str]:
    """The `ce_type`s a projection worker takes, each with the stored topic it stands for:
    every version of every public name up to the current one, and the stored topics (messages
    published before the public names)."""
    found: dict[str, str] = {}
    for topic, kind in event_types().items():
        found[topic] = topic
        for version in range(1, kind.version + 1):
            found[public_name(topic, version)] = topic
    return found
