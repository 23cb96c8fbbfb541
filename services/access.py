"""Access decisions: the question a read asks, and the answer that is recorded with it.

The policy decision point is a port (`DecisionPoint`); infra/access/cedar.py answers it with Cedar.
A decision never carries personal values: categories, tiers, policy ids and the policy-set hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from domain.access import AccessOutcome


class Role(StrEnum):
    RECRUITER = "recruiter"
    INVESTIGATOR = "investigator"
    REVIEWER = "reviewer"
    HIRING_MANAGER = "hiring_manager"
    COMPLIANCE = "compliance"
    CANDIDATE = "candidate"
    SERVICE = "service"


@dataclass(frozen=True)
class AccessRequest:
    """Who asks, why, about whom, under which consent, for which categories."""

    principal: str
    role: Role
    purpose: str
    subject: UUID
    categories: tuple[str, ...]
    consent_ids: tuple[UUID, ...] = ()
    consent_active: bool = False
    consented_purposes: frozenset[str] = frozenset()
    named_categories: frozenset[str] = frozenset()
    handles: bool = False  # a recruiter handling this candidate
    assigned: bool = False  # an investigator assigned to one of the candidate's investigations
    planned_categories: frozenset[str] = frozenset()  # what the assigned plans check
    report_categories: frozenset[str] = frozenset()  # what a report under review contains
    disclosed_categories: frozenset[str] = frozenset()  # what was disclosed to this principal
    is_subject: bool = False  # the candidate reading their own data
    break_glass: str | None = None  # a compliance officer's recorded justification
    # where the values come from: the profile (the candidate's own values, claims among them),
    # an investigation, or a report (what a check concluded, as it was disclosed)
    view: str = "profile"


@dataclass(frozen=True)
class AccessDecision:
    allowed: tuple[str, ...]
    withheld: tuple[str, ...]
    policy_ids: tuple[str, ...]
    policy_set_hash: str
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)  # category -> policies

    @property
    def outcome(self) -> AccessOutcome:
        if not self.withheld:
            return AccessOutcome.ALLOWED
        return AccessOutcome.PARTIAL if self.allowed else AccessOutcome.REFUSED

    @property
    def withheld_because(self) -> list[str]:
        """The policies that withheld what was withheld, sorted (a refusal's reasons)."""
        return sorted({r for c in self.withheld for r in self.reasons.get(c, ())})


# Views read whole, decided once rather than per category: they hold no personal value, yet
# whose they are makes them the subject's business (the access policies name who may).
READ_ACCESS_LOG = "read-access-log"  # who read what about the subject, when, why
READ_CONSENTS = "read-consents"  # the subject's consent register
# Decided once too: may this principal state a break-glass justification with a read at all?
BREAK_GLASS = "break-glass"


@dataclass(frozen=True)
class ViewDecision:
    """Whether a principal may read one of the subject's whole views."""

    allowed: bool
    policy_ids: tuple[str, ...]
    policy_set_hash: str

    @property
    def outcome(self) -> AccessOutcome:
        return AccessOutcome.ALLOWED if self.allowed else AccessOutcome.REFUSED


class DecisionPoint(Protocol):
    policy_set_hash: str

    def decide(self, request: AccessRequest) -> AccessDecision:
        """Each category the request asks for: allowed or withheld, and by which policies."""
        ...

    def decide_view(self, action: str, request: AccessRequest) -> ViewDecision:
        """May the request's principal read its subject's view (READ_ACCESS_LOG,
        READ_CONSENTS), or break the glass (BREAK_GLASS)?"""
        ...


def decide_read(decision_point: DecisionPoint, request: AccessRequest) -> AccessDecision:
    """The decision on a read of values. Only the roles the policies let break the glass may
    state a justification: anyone else's read that states one is refused whole, every
    category withheld by the policies that said no (it is recorded like any read, its
    justification with it), whatever the read would have been allowed without it."""
    if request.break_glass is not None:
        glass = decision_point.decide_view(BREAK_GLASS, request)
        if not glass.allowed:
            categories = tuple(dict.fromkeys(request.categories))
            return AccessDecision(
                allowed=(),
                withheld=categories,
                policy_ids=glass.policy_ids,
                policy_set_hash=glass.policy_set_hash,
                reasons=dict.fromkeys(categories, glass.policy_ids),
            )
    return decision_point.decide(request)
