"""A data subject's access package (GDPR Art. 15 and 20, PIPL Art. 45): everything held about
one candidate, machine-readable, for the candidate.

The package carries the subject's personal values, so handing it over is a disclosure like
any other: it is recorded first (`DataDisclosed` to the candidate, channel "access package"),
and if that record cannot be stored no package is made. It is then assembled through the
recorded read path, read as the subject reads their own data (each read recorded too, with
a purpose naming who made the package): the profile, the consent register, each
investigation with the candidate's feedback and disputes and the answers, each report, the
timeline, the records of their case (every value the store holds about them, opened:
services/subject_records.py), their portal links' history (issued, issued again, revoked,
each sign-in to the portal and each sign-out, and each use the access log records; never a
token or its hash), and last the access log, so the package shows its own disclosure and
reads. The records are read from the store before the disclosure, so that it names every
category they carry; nothing of them leaves before it is stored. The candidate asks for
their own; compliance makes one on their behalf; the operator's command line too
(`backcheck subject export`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from domain.candidate import Candidate
from domain.principal import (
    SESSION_EXPIRED,
    SESSION_IDLE,
    SESSION_REPLACED,
    SIGNED_OUT,
    Principal,
    portal_name,
    principal_id,
)
from domain.report import ReportStatus
from services.access import Role
from services.audit_reads import AuditReads, ReadTimeline, TimelineView
from services.dto import (
    AccessLogView,
    Actor,
    Command,
    ConsentRegisterView,
    InvestigationView,
    ProfileView,
    ReadAccessLog,
    ReadConsents,
    ReadInvestigation,
    ReadProfile,
    ReadReport,
    RecordDisclosure,
    ReportView,
    Result,
)
from services.errors import (
    OutsideAssignmentsError,
    SetByAuthenticationError,
    UseCaseNotPermittedError,
)
from services.facts import SEALED
from services.identity import Authentication, Identity, acting_as, current_identity
from services.recording import READ_FAILURES
from services.subject_records import HeldRecord, held_records
from services.unit import use_case

CHANNEL = "access package"
PACKAGE_VIEW = CHANNEL  # the view a read that could not make the package names
FORMAT = "backcheck.subject-data.v1"
BASIS = "GDPR Art. 15 (right of access) and Art. 20 (data portability); PIPL Art. 45"
PURPOSE = "access package for the data subject"
_MAKERS = (Role.CANDIDATE, Role.COMPLIANCE)


class ExportSubjectData(Command):
    candidate_id: UUID
    actor: Actor


class SubjectDataPackage(Result):
    format: str = Field(description="this document's format and version")
    basis: str = Field(description="the rights it answers")
    candidate_id: UUID
    disclosure_id: UUID = Field(description="the recorded disclosure of this package")
    made_at: datetime
    made_by: str
    profile: ProfileView
    consents: ConsentRegisterView
    investigations: list[InvestigationView]
    reports: list[ReportView]
    timeline: TimelineView
    records: list[HeldRecord] = Field(
        description="every event of the candidate's case, in log order, with every value it "
        "holds opened: findings with their sources and notes, reviewers' comments, withdrawal "
        "reasons, amendments, disputes, feedback and the answers (services/subject_records.py)"
    )
    portal_links: PortalLinks = Field(
        description="the candidate's portal links: issued, issued again, revoked, and used"
    )
    access_log: AccessLogView = Field(
        description="every access and disclosure, this package's own included"
    )


class PortalLinkEvent(Result):
    """What became of the candidate's portal link: never its token, nor the token's hash."""

    event: Literal["issued", "issued again", "revoked"] = Field(
        description="issued (the first link), issued again (a new token: the old one is "
        "refused from then on), revoked (no link works from then on)"
    )
    at: datetime
    by: str = Field(description="who issued or revoked it")
    authenticated: str = Field(description="how they were known: token, operator, ...")
    expires_at: datetime | None = Field(default=None, description="issued: until when")
    reason: str | None = Field(default=None, description="revoked: why")


class PortalLinkUse(Result):
    at: datetime
    access_id: UUID = Field(description="the access log's entry for it")
    view: str
    outcome: str


class PortalSignIn(Result):
    """A portal session the candidate opened with their link: never its id, nor the link."""

    at: datetime
    until: datetime = Field(description="when the session ended at the latest")
    authenticated: str = Field(description="how they were known: portal-link")


class PortalSignOut(Result):
    """A portal session the candidate ended by signing out: never its id, nor the link."""

    at: datetime
    session_opened_at: datetime = Field(
        description="when the session signed out of was opened (its sign-in's `at`)"
    )
    authenticated: str = Field(description="how they were known: portal-link")


# why a portal session was found ended (domain/principal.py: SESSION_ENDINGS)
Ending = Literal["idle", "expired", "replaced"]
_ENDINGS: dict[str, Ending] = {
    SESSION_IDLE: "idle",
    SESSION_EXPIRED: "expired",
    SESSION_REPLACED: "replaced",
}


class PortalSessionEnded(Result):
    """A portal session that ended otherwise than by signing out, found ended and recorded
    then (decision 0056): never its id, nor the link."""

    ended_at: datetime = Field(description="when it ended, by its rules")
    reason: Ending = Field(
        description="idle: unused for the idle bound after its last call; expired: at its "
        "end (the link's expiry, or the longest a session lasts); replaced: by a new session "
        "opened in its browser"
    )
    session_opened_at: datetime = Field(description="when it was opened (its sign-in's `at`)")
    recorded_at: datetime = Field(
        description="when its end was found and recorded: at the next call made with its "
        "cookie, the next sign-in to the portal, or the new session that replaced it"
    )


class PortalLinks(Result):
    principal: str = Field(description="the links' principal: candidate:<id>")
    events: list[PortalLinkEvent] = Field(description="in the order they were recorded")
    signed_in: list[PortalSignIn] = Field(
        description="each portal session opened with a link (a sign-in), in the order they "
        "were recorded"
    )
    signed_out: list[PortalSignOut] = Field(
        description="each portal session the candidate ended by signing out, in the order "
        "they were recorded"
    )
    sessions_ended: list[PortalSessionEnded] = Field(
        description="each portal session that ended otherwise (unused, at its end, replaced "
        "in its browser), in the order they were recorded: once found ended, with when it "
        "ended; one not found ended yet, or that ended with its link (revoked or issued "
        "again: in `events`), is not listed, and ended at the latest at its sign-in's `until`"
    )
    used: list[PortalLinkUse] = Field(
        description="each read and disclosure made with a link (`authentication: "
        "portal-link` in the access log); commands made with one are among `records`, "
        "their `authenticated` naming portal-link"
    )


_LINK_EVENTS: dict[str, Literal["issued", "issued again", "revoked"]] = {
    "Added": "issued",
    "TokenRotated": "issued again",
    "Revoked": "revoked",
}


def _link_event(event: Any) -> PortalLinkEvent | None:
    kind = _LINK_EVENTS.get(type(event).__name__)
    if kind is None:
        return None  # a portal link holds no sender key: nothing else is recorded of it
    by = getattr(event, "added_by", None) or getattr(event, "rotated_by", None)
    return PortalLinkEvent(
        event=kind,
        at=event.timestamp,
        by=by or event.revoked_by,
        authenticated=event.authenticated.method,
        expires_at=getattr(event, "expires_at", None),
        reason=getattr(event, "reason", None),
    )


def check_maker(identity: Identity | None, cmd: ExportSubjectData) -> None:
    """The candidate gets their own package, compliance anyone's (on their behalf); anyone
    else, or a candidate asking for another's, is refused before anything is recorded."""
    if identity is None:
        return
    if cmd.actor != identity.principal:
        raise SetByAuthenticationError("actor", cmd.actor, identity.principal)
    if identity.role is Role.COMPLIANCE:
        return
    if identity.role is not Role.CANDIDATE:
        raise UseCaseNotPermittedError(
            "export-subject-data", identity.role.value, [r.value for r in _MAKERS]
        )
    if identity.principal != portal_name(cmd.candidate_id):
        raise OutsideAssignmentsError(identity.principal, cmd.candidate_id)


class SubjectExports(AuditReads):
    @use_case
    def export_subject_data(self, cmd: ExportSubjectData) -> SubjectDataPackage:
        """A candidate's access package (GDPR Art. 15/20, PIPL Art. 45): the disclosure to the
        candidate is recorded before the package is assembled, then everything held about
        them is read as they read their own data, each read recorded. The candidate asks for
        their own, compliance on their behalf; nobody else.

        The reads are made as the subject (principal candidate:<id>, role candidate) whoever
        asks, since the package is what the subject may see; their purpose names who made it,
        and the disclosure names who handed it over."""
        caller = current_identity()
        check_maker(caller, cmd)
        subject = portal_name(cmd.candidate_id)
        purpose = PURPOSE if cmd.actor == subject else f"{PURPOSE}, made by {cmd.actor}"
        me = {"principal": subject, "role": Role.CANDIDATE, "purpose": purpose}
        # opened to be handed over only once the disclosure naming their categories is stored;
        # a value that does not open stops it, recorded as a failed read of theirs
        try:
            self.load(Candidate, cmd.candidate_id)  # not found: nothing recorded
            records, categories = held_records(
                self.replay(subject=cmd.candidate_id), cmd.candidate_id
            )
        except READ_FAILURES as error:
            reader = ReadConsents.model_validate({**me, "candidate_id": cmd.candidate_id})
            raise self._record_failure(reader, PACKAGE_VIEW, cmd.candidate_id, error) from None
        disclosure_id = self.record_disclosure(  # first: no record, no package
            RecordDisclosure(
                candidate_id=cmd.candidate_id,
                recipient=subject,
                purpose=PURPOSE,
                channel=CHANNEL,
                actor=cmd.actor,
            ),
            sorted(categories),
        )
        as_subject = Identity(
            principal=subject,
            role=Role.CANDIDATE,
            authentication=caller.authentication if caller else Authentication.OPERATOR,
            assignments=frozenset({cmd.candidate_id}),
        )
        whose = cmd.candidate_id
        mine = {**me, "candidate_id": whose}
        key = str(whose)
        with acting_as(as_subject):
            profile = self.read_profile(ReadProfile.model_validate(mine))
            consents = self.read_consents(ReadConsents.model_validate(mine))
            views = self.read_model()
            investigation_ids = [
                UUID(i["investigation_id"]) for i in views.of_subject("investigation", key, SEALED)
            ]
            report_ids = [
                UUID(r["report_id"])
                for r in views.of_subject("report", key, SEALED)
                if ReportStatus(r["status"]) is not ReportStatus.DESTROYED
            ]
            investigations = [
                self.read_investigation(
                    ReadInvestigation.model_validate({**me, "investigation_id": i})
                )
                for i in investigation_ids
            ]
            reports = [
                self.read_report(ReadReport.model_validate({**me, "report_id": r}))
                for r in report_ids
            ]
            timeline = self.read_timeline(ReadTimeline.model_validate(mine))
            access_log = self.read_access_log(ReadAccessLog.model_validate(mine))
        links = self._portal_links(subject, access_log)
        return SubjectDataPackage(
            format=FORMAT,
            basis=BASIS,
            candidate_id=cmd.candidate_id,
            disclosure_id=disclosure_id,
            made_at=self.now(),
            made_by=cmd.actor,
            profile=profile,
            consents=consents,
            investigations=investigations,
            reports=reports,
            timeline=timeline,
            records=records,
            portal_links=links,
            access_log=access_log,
        )

    def _portal_links(self, subject: str, access_log: AccessLogView) -> PortalLinks:
        """The history of the candidate's portal links, from their principal's events (not
        the subject's: a principal is about no subject), and each use the log records."""
        stored = [
            self.mapper.to_domain_event(e)
            for e in self.recorder.select_events(principal_id(subject))
        ]
        events = [_link_event(e) for e in stored]
        return PortalLinks(
            principal=subject,
            events=[e for e in events if e is not None],
            signed_in=[
                PortalSignIn(at=e.timestamp, until=e.ends_at, authenticated=e.authenticated.method)
                for e in stored
                if isinstance(e, Principal.SessionOpened)
            ],
            signed_out=[
                PortalSignOut(
                    at=e.timestamp,
                    session_opened_at=e.opened_at,
                    authenticated=e.authenticated.method,
                )
                for e in stored
                if isinstance(e, Principal.SessionClosed)
                and e.reason == SIGNED_OUT
                and e.authenticated is not None
            ],
            sessions_ended=[
                PortalSessionEnded(
                    ended_at=e.ended_at,
                    reason=_ENDINGS[e.reason],
                    session_opened_at=e.opened_at,
                    recorded_at=e.timestamp,
                )
                for e in stored
                if isinstance(e, Principal.SessionClosed) and e.reason in _ENDINGS
            ],
            used=[
                PortalLinkUse(at=e.at, access_id=e.access_id, view=e.view, outcome=e.outcome)
                for e in access_log.entries
                if e.authentication == Authentication.PORTAL.value
            ],
        )
