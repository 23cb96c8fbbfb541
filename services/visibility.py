"""Who sees what of a candidate's data: each reader the candidate's case gives them, and the
categories the access policies would allow or withhold from that reader now.

The readers come from the case itself: the recruiter who registered the candidate, asked for
their consent or planned an investigation; the investigators assigned to one; any reviewer
(who reads what a report under review contains) and each one who approved a report; each
recipient a report was disclosed to; a compliance officer (nothing without a recorded
break-glass justification); and the candidate. Each is decided by the real decision point on
the same facts a read of their profile by that principal would be decided on
(services/facts.py `access_request`, services/access.py `decide_read`), for a purpose the
consent in force names (the policies treat every such purpose alike, and refuse any other).

This is no recorded read, and needs none: it opens no personal value. It reads the subject's
views with every value sealed, as a read's decision does, and answers categories, tiers,
policy ids, the readers' names and the case's ids and statuses, as the lists do. What a reader
would get is recorded when that reader reads. Only the candidate (their own) and compliance
(anyone's) may ask (`check_asker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from domain.classification import tier_of
from domain.consent import ConsentStatus
from domain.investigation import InvestigationStatus
from domain.principal import Principal, portal_name, principal_id
from domain.report import ReportStatus
from services.access import Role, decide_read
from services.answers import profile_fields
from services.dto import ReadProfile, Result
from services.errors import AggregateMissingError, OutsideAssignmentsError, UseCaseNotPermittedError
from services.facts import SEALED, access_request, consent_status_of
from services.identity import ASSIGNMENTS_POLICY, Identity
from services.queries import QueryUseCases

Doc = dict[str, Any]
ANY_REVIEWER = "any reviewer"
ANY_COMPLIANCE = "any compliance officer"
NO_PURPOSE = "any purpose"  # decided for when no consent is in force: every purpose refused
_ASKERS = (Role.CANDIDATE, Role.COMPLIANCE)


class CategoryDecision(Result):
    category: str
    tier: str
    allowed: bool
    policies: list[str] = Field(description="the policies that decided it")


class ReaderView(Result):
    role: str
    principal: str | None = Field(description="none: anyone in the role")
    grounds: list[str] = Field(description="why this reader is one of yours")
    purpose: str = Field(description="the purpose decided for")
    allowed: list[str]
    withheld: list[str]
    categories: list[CategoryDecision]


class CaseItem(Result):
    kind: str = Field(description="investigation or report")
    id: UUID
    status: str
    shared_with_candidate: bool | None = Field(
        default=None, description="reports: a copy was shared with the candidate"
    )


class VisibilityView(Result):
    candidate_id: UUID
    decided_at: datetime
    policy_set_hash: str
    purposes: list[str] = Field(description="the purposes the consent in force names")
    readers: list[ReaderView]
    cases: list[CaseItem] = Field(description="the candidate's investigations and reports")


@dataclass
class _Reader:
    role: Role
    principal: str | None
    grounds: list[str] = field(default_factory=list)
    assignments: frozenset[UUID] = frozenset()


def check_asker(identity: Identity | None, candidate_id: UUID) -> None:
    """Who may ask who sees what: the candidate about themselves, compliance about anyone
    (the operator's command line too) — a compliance token scoped to some candidates about
    them alone. Anyone else is refused, before the candidate is looked up (so whether they
    exist is not told either); nothing is recorded."""
    if identity is None:
        return
    if identity.role is Role.COMPLIANCE:
        if identity.assignments and candidate_id not in identity.assignments:
            raise OutsideAssignmentsError(identity.principal, candidate_id)
        return
    if identity.role is not Role.CANDIDATE:
        raise UseCaseNotPermittedError(
            "read-visibility", identity.role.value, [r.value for r in _ASKERS]
        )
    if identity.principal != portal_name(candidate_id):
        raise OutsideAssignmentsError(identity.principal, candidate_id)


class VisibilityQueries(QueryUseCases):
    def _known_reader(self, name: str, role: Role) -> _Reader:
        """A reader by name: as their principal was issued (role, assignments), if it was;
        else in the role the case gives them (a name the command line stated)."""
        pid = principal_id(name)
        if self.exists(pid):
            try:
                principal = self.load(Principal, pid)
            except AggregateMissingError:
                return _Reader(role, name)
            return _Reader(Role(principal.role), name, [], frozenset(principal.assignments))
        return _Reader(role, name)

    def _readers(self, views: Any, key: str, profile: Doc) -> list[_Reader]:
        found: dict[tuple[str, str | None], _Reader] = {}

        def add(name: str | None, role: Role, why: str) -> None:
            reader = self._known_reader(name, role) if name is not None else _Reader(role, None)
            found.setdefault((reader.role.value, name), reader).grounds.append(why)

        add(profile["registered_by"], Role.RECRUITER, "registered you")
        for c in views.of_subject("consent", key, SEALED):
            add(c["requested_by"], Role.RECRUITER, f"asked for your consent {c['consent_id']}")
        for i in views.of_subject("investigation", key, SEALED):
            if InvestigationStatus(i["status"]) is InvestigationStatus.CANCELLED:
                continue
            add(i["planned_by"], Role.RECRUITER, f"planned investigation {i['investigation_id']}")
            for name in i["investigators"]:
                add(name, Role.INVESTIGATOR, f"assigned to investigation {i['investigation_id']}")
        reports = [
            r
            for r in views.of_subject("report", key, SEALED)
            if ReportStatus(r["status"]) is not ReportStatus.DESTROYED
        ]
        if reports:
            add(None, Role.REVIEWER, "reviewers read what a report contains while it is reviewed")
        for r in reports:
            if r["approved_by"]:
                add(r["approved_by"], Role.REVIEWER, f"approved report {r['report_id']}")
            for d in r["disclosures"]:
                add(
                    d["recipient"],
                    Role.HIRING_MANAGER,
                    f"report {r['report_id']} was disclosed to them ({d['recipient_role']})",
                )
        add(None, Role.COMPLIANCE, "reads values only with a recorded break-glass justification")
        add(portal_name(UUID(key)), Role.CANDIDATE, "you")
        return list(found.values())

    def who_sees_what(self, candidate_id: UUID) -> VisibilityView:
        """Each reader of the candidate's data and the categories the policies would give
        them now; decided, never recorded: it opens no value (see the module's docstring)."""
        key = str(candidate_id)
        views = self.read_model(deciding=True)
        profile = views.get("profile", key, SEALED)
        if profile is None:
            raise AggregateMissingError("candidate", candidate_id)
        categories = tuple(dict.fromkeys(f.category for _, f in profile_fields(profile)))
        now = self.now()
        purposes = sorted(
            {
                p
                for c in views.of_subject("consent", key, SEALED)
                if consent_status_of(c, now) is ConsentStatus.ACTIVE
                for p in c["terms"]["purposes"]
            }
        )
        purpose = purposes[0] if purposes else NO_PURPOSE
        readers = [
            self._decided(reader, candidate_id, categories, views, profile, purpose, now)
            for reader in self._readers(views, key, profile)
        ]
        return VisibilityView(
            candidate_id=candidate_id,
            decided_at=now,
            policy_set_hash=self.decision_point.policy_set_hash,
            purposes=purposes,
            readers=readers,
            cases=_cases(views, key),
        )

    def _decided(
        self,
        reader: _Reader,
        subject: UUID,
        categories: tuple[str, ...],
        views: Any,
        profile: Doc,
        purpose: str,
        now: datetime,
    ) -> ReaderView:
        asking = ReadProfile(
            candidate_id=subject,
            principal=reader.principal or reader.role.value,
            role=reader.role,
            purpose=purpose,
        )
        request = access_request(asking, subject, categories, views, profile, now)
        if reader.principal is None:  # anyone in the role: no relationship of their own
            request = replace(
                request, handles=False, assigned=False, disclosed_categories=frozenset()
            )
        if reader.assignments and subject not in reader.assignments:
            reasons: dict[str, tuple[str, ...]] = dict.fromkeys(categories, (ASSIGNMENTS_POLICY,))
            allowed: tuple[str, ...] = ()
        else:
            decision = decide_read(self.decision_point, request)
            reasons, allowed = decision.reasons, decision.allowed
        return ReaderView(
            role=reader.role.value,
            principal=reader.principal,
            grounds=reader.grounds,
            purpose=purpose,
            allowed=list(allowed),
            withheld=[c for c in categories if c not in allowed],
            categories=[
                CategoryDecision(
                    category=c,
                    tier=tier_of(c).value,
                    allowed=c in allowed,
                    policies=sorted(reasons.get(c, ())),
                )
                for c in categories
            ],
        )


def _cases(views: Any, key: str) -> list[CaseItem]:
    items = [
        CaseItem(kind="investigation", id=UUID(i["investigation_id"]), status=i["status"])
        for i in views.of_subject("investigation", key, SEALED)
    ]
    items += [
        CaseItem(
            kind="report",
            id=UUID(r["report_id"]),
            status=r["status"],
            shared_with_candidate=r["shared_edition"] > 0,
        )
        for r in views.of_subject("report", key, SEALED)
    ]
    return items
