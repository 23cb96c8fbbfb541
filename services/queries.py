"""Reads of personal data, access-controlled and recorded.

Every read goes: principal + purpose → the facts that matter (consent in force, role, case
assignment) → policy decision → view → field-level redaction → an `Access.Recorded` event,
durably stored → only then the response. If the access event cannot be stored, nothing is
returned (fail closed). A refused read is recorded too, then refused.
"""

from __future__ import annotations

from uuid import UUID

from domain.access import Access, DataDisclosure
from domain.candidate import Candidate
from domain.classification import tier_of
from domain.consent import Consent, ConsentStatus
from domain.errors import AccessRefusedError, InvalidInputError
from domain.investigation import Investigation, InvestigationStatus
from services.access import AccessPolicy, AccessRequest, Role
from services.dto import AccessEntry, FieldView, ProfileView, ReadProfile, RecordDisclosure
from services.unit import UnitOfWork, use_case


class QueryUseCases(UnitOfWork):
    policy: AccessPolicy | None = None

    def _facts(self, cmd: ReadProfile, categories: tuple[str, ...]) -> AccessRequest:
        now = self.clock()
        subject = cmd.candidate_id
        candidate = self.load(Candidate, subject)
        consents = self.of_subject(Consent, "Requested", subject)
        scopes = [c.scope_at(now) for c in consents]
        active = [sc for sc in scopes if sc.status is ConsentStatus.ACTIVE]
        investigations = [
            i
            for i in self.of_subject(Investigation, "Planned", subject)
            if i.status is not InvestigationStatus.CANCELLED
        ]
        mine = [i for i in investigations if cmd.principal in i.investigators]
        handles = (
            cmd.principal == candidate.registered_by
            or any(cmd.principal == c.requested_by for c in consents)
            or any(cmd.principal == i.planned_by for i in investigations)
        )
        return AccessRequest(
            principal=cmd.principal,
            role=cmd.role,
            purpose=cmd.purpose,
            subject=subject,
            categories=categories,
            consent_ids=tuple(sc.consent_id for sc in active),
            consent_active=bool(active),
            consented_purposes=frozenset(p for sc in active for p in sc.terms.purposes),
            named_categories=frozenset(k for sc in active for k in sc.categories),
            handles=handles,
            assigned=bool(mine),
            planned_categories=frozenset(
                k for i in mine for check in i.checks.values() for k in check.check_type.categories
            ),
            is_subject=cmd.role is Role.CANDIDATE and cmd.principal == f"candidate:{subject}",
            break_glass=cmd.break_glass,
        )

    @use_case
    def read_profile(self, cmd: ReadProfile) -> ProfileView:
        """A candidate's identity and claims, showing only the categories the policies allow
        this principal for this purpose under the consent in force; the read is recorded first."""
        if self.policy is None:
            raise InvalidInputError("reads need an access policy configured")
        candidate = self.load(Candidate, cmd.candidate_id)
        fields = [(f.name, f) for f in candidate.identity] + [
            (f"{claim.kind.value}.{f.name}", f)
            for claim in candidate.claims.values()
            for f in claim.fields
        ]
        categories = tuple(dict.fromkeys(f.category for _, f in fields))
        request = self._facts(cmd, categories)
        decision = self.policy.decide(request)
        access = Access.record(
            candidate_id=candidate.id,
            principal=cmd.principal,
            role=cmd.role.value,
            purpose=cmd.purpose,
            view="profile",
            returned=decision.allowed,
            withheld=decision.withheld,
            outcome=decision.outcome,
            policy_ids=decision.policy_ids,
            policy_set_hash=decision.policy_set_hash,
            consent_ids=request.consent_ids,
            break_glass=cmd.break_glass,
        )
        self.commit(access)  # durably recorded before anything is returned; fails closed
        if decision.outcome == "refused" and categories:
            reasons = sorted({r for c in decision.withheld for r in decision.reasons.get(c, ())})
            raise AccessRefusedError(candidate.id, "profile", reasons)
        allowed = set(decision.allowed)
        return ProfileView(
            candidate_id=candidate.id,
            access_id=access.id,
            outcome=decision.outcome,
            erased=candidate.erased,
            fields=[
                FieldView(
                    name=name,
                    category=f.category,
                    tier=tier_of(f.category).value,
                    value=f.value if f.category in allowed else None,
                    withheld=f.category not in allowed,
                )
                for name, f in fields
            ],
        )

    @use_case
    def record_disclosure(self, cmd: RecordDisclosure) -> UUID:
        """Personal data leaving outside the read path is recorded first, with every category
        it carries; if the record cannot be stored, nothing may be handed over."""
        candidate = self.load(Candidate, cmd.candidate_id)
        categories = [f.category for f in candidate.identity] + [
            f.category for claim in candidate.claims.values() for f in claim.fields
        ]
        disclosure = DataDisclosure.record(
            candidate.id, cmd.actor, cmd.recipient, cmd.purpose, cmd.channel, tuple(categories)
        )
        self.commit(disclosure)
        return disclosure.id

    def access_log(self, candidate_id: UUID) -> list[AccessEntry]:
        """Who read what about the candidate, when, why, and what they were refused, and what
        was handed over to whom. The log holds no personal values, so reading it is not itself
        an access to personal data."""
        disclosures = [
            AccessEntry(
                access_id=d.id,
                at=d.created_on,
                principal=d.disclosed_by,
                role="disclosure",
                purpose=d.purpose,
                view=f"{d.channel} to {d.recipient}",
                returned=list(d.categories),
                withheld=[],
                outcome="disclosed",
            )
            for d in self.of_subject(DataDisclosure, "DataDisclosed", candidate_id)
        ]
        reads = [
            AccessEntry(
                access_id=a.id,
                at=a.created_on,
                principal=a.principal,
                role=a.role,
                purpose=a.purpose,
                view=a.view,
                returned=list(a.returned),
                withheld=list(a.withheld),
                outcome=a.outcome,
            )
            for a in self.of_subject(Access, "Recorded", candidate_id)
        ]
        return sorted(reads + disclosures, key=lambda e: e.at)
