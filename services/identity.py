"""Who is calling, as established by authentication, for the use cases run on their behalf.

An entry point that authenticates a caller (an API token, an OIDC bearer, a portal link) runs
the use case inside `acting_as(identity)`. Under an identity, a read's principal and role are
the identity's, never what the request states (`check_reader`); the access record says how
the principal was authenticated (`authentication_now`); and a principal assigned to some
candidates reads only theirs (`AssignedDecisions`). Without one, the caller is the operator on
the store's own machine, and is recorded as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.access import Authentication
from services.access import (
    AccessDecision,
    AccessRequest,
    DecisionPoint,
    Role,
    ViewDecision,
)
from services.dto import Reader
from services.errors import OutsideAssignmentsError, SetByAuthenticationError, WholeStoreError

__all__ = [
    "ASSIGNMENTS_POLICY",
    "AssignedDecisions",
    "Authentication",
    "Identity",
    "acting_as",
    "authentication_now",
    "check_reader",
    "check_scope",
    "current_identity",
    "role_now",
]

# Named in the record of every read it refuses (tests/unit/test_persisted_names.py).
ASSIGNMENTS_POLICY = "principal-assignments"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: its principal's name and role, how it was authenticated, the
    candidates it is confined to (none: not confined), and when its credential expires."""

    principal: str
    role: Role
    authentication: Authentication
    assignments: frozenset[UUID] = frozenset()
    expires_at: datetime | None = None


_identity: ContextVar[Identity | None] = ContextVar("identity", default=None)


@contextmanager
def acting_as(identity: Identity) -> Iterator[None]:
    """Use cases called inside run on behalf of `identity`."""
    token = _identity.set(identity)
    try:
        yield
    finally:
        _identity.reset(token)


def current_identity() -> Identity | None:
    """The authenticated caller of the running use case; None: the operator's command line."""
    return _identity.get()


def authentication_now(receiving: bool) -> Authentication:
    """How the caller of the running use case was authenticated, for its access records: the
    identity's way; else a delivered command's actor (`receiving`) is asserted by its sender;
    else it is the operator on the store's machine."""
    identity = _identity.get()
    if identity is not None:
        return identity.authentication
    return Authentication.ASSERTED if receiving else Authentication.OPERATOR


# The role a disclosure made on the operator's command line is recorded in: the operator is no
# principal of the policies', and states no role for a command (as `authentication_now`).
OPERATOR_ROLE = "operator"


def role_now(receiving: bool) -> str:
    """The role the caller of the running use case acts in, for the disclosures it records:
    the identity's (a principal's role, set by authentication, never stated by the caller);
    else a delivered command's sender, a service; else the operator on the store's machine."""
    identity = _identity.get()
    if identity is not None:
        return identity.role.value
    return Role.SERVICE.value if receiving else OPERATOR_ROLE


def check_reader(command: object) -> None:
    """Under an identity, a read's principal and role are the identity's: a command stating
    others is refused (the HTTP layer fills them in from the identity; this is the second
    line of defence)."""
    identity = _identity.get()
    if identity is None or not isinstance(command, Reader):
        return
    if command.principal != identity.principal:
        raise SetByAuthenticationError("principal", command.principal, identity.principal)
    if command.role is not identity.role:
        raise SetByAuthenticationError("role", command.role.value, identity.role.value)


def check_scope(command: object) -> None:
    """Under an identity confined to some candidates, a command naming another is refused
    before anything is loaded, so no rule's answer about that candidate (erased, no consent)
    reaches the caller. Reads are decided by `AssignedDecisions` instead, which records the
    refusal; what a command changes is checked again when it is saved (services/unit.py)."""
    identity = _identity.get()
    if identity is None or not identity.assignments or isinstance(command, Reader):
        return
    named = getattr(command, "candidate_id", None)
    if isinstance(named, UUID) and named not in identity.assignments:
        raise OutsideAssignmentsError(identity.principal, named)


def check_whole_store(identity: Identity | None, what: str) -> None:
    """A look at the whole store (`what`: the chain's verification, the rule check, the
    refused reads' drill-down) tells of every candidate in it: refused to an identity scoped
    to some candidates, before anything is read, naming none (decision 0063, as the lists and
    the case overview refuse it: decision 0060)."""
    if identity is not None and identity.assignments:
        raise WholeStoreError(identity.principal, what)


class AssignedDecisions:
    """The decision point for principals confined to the candidates they are assigned to:
    a read about anyone else is refused by `principal-assignments` (and recorded, as every
    refusal is); any other read is decided by the inner decision point."""

    def __init__(self, inner: DecisionPoint) -> None:
        self.inner = inner
        self.policy_set_hash = inner.policy_set_hash

    @staticmethod
    def _outside(request: AccessRequest) -> bool:
        identity = _identity.get()
        return (
            identity is not None
            and bool(identity.assignments)
            and request.subject not in identity.assignments
        )

    def decide(self, request: AccessRequest) -> AccessDecision:
        if not self._outside(request):
            return self.inner.decide(request)
        categories = tuple(dict.fromkeys(request.categories))
        because = (ASSIGNMENTS_POLICY,)
        return AccessDecision(
            allowed=(),
            withheld=categories,
            policy_ids=because,
            policy_set_hash=self.inner.policy_set_hash,
            reasons=dict.fromkeys(categories, because),
        )

    def decide_view(self, action: str, request: AccessRequest) -> ViewDecision:
        if not self._outside(request):
            return self.inner.decide_view(action, request)
        return ViewDecision(False, (ASSIGNMENTS_POLICY,), self.inner.policy_set_hash)
