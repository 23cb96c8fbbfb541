"""Who may see the dashboard, and the refused reads behind one of its bars.

The dashboard (services/dashboard.py) holds counts, ids, statuses, check types, days and
policy ids: staff business, for recruiters, investigators, reviewers and compliance officers;
a candidate, a hiring manager or an internal service is refused. Which colleague was refused
how often is compliance's business alone: to every other role the refusals come without
their principals (totals and policies stay).

The drill-down lists the reads refused on one day, of one principal or under one policy when
asked: who tried to read whom, across subjects. That is the compliance officer's question,
so only compliance may ask it. It names candidates by id and readers by principal, never a
personal value, so it is no read of personal data and leaves no access record (as the lists
do); it is gated, never recorded. Each filter is a view of its own (projections/access_log.py),
so a page costs what its rows do, however many reads were refused that day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from domain.principal import MAX_NAME, NAME_RULE
from projections.access_log import NO_POLICY, refusal_view
from services.access import Role
from services.dashboard import ChainHealth, DashboardQueries, DashboardSummary
from services.dto import Command, Result
from services.errors import UseCaseNotPermittedError
from services.identity import Identity, check_whole_store
from services.lists import MAX_CURSOR, MAX_LIMIT, Cursor, Limit, decode_cursor, encode_cursor

__all__ = [
    "DASHBOARD_ROLES",
    "DRILL_DOWN_ROLES",
    "MAX_POLICY",
    "NO_POLICY",
    "DashboardNotPermittedError",
    "RefusalPage",
    "RefusalQueries",
    "RefusedRead",
    "RefusedReads",
    "check_dashboard",
    "check_drill_down",
]

DASHBOARD_ROLES = (Role.RECRUITER, Role.INVESTIGATOR, Role.REVIEWER, Role.COMPLIANCE)
DRILL_DOWN_ROLES = (Role.COMPLIANCE,)
DRILL_DOWN = "the refused reads' drill-down"
MAX_POLICY = 200  # a policy's @id (infra/access/policies): far shorter in practice
# A policy id as the refusals name it: any text without control characters, or `(none)`.
POLICY_RULE = r"^[^\x00-\x1f\x7f]+$"


class DashboardNotPermittedError(UseCaseNotPermittedError):
    """A role that may not see the dashboard (or its drill-down) asked for it (403); nothing
    was read, so nothing is recorded."""

    def __init__(self, name: str, role: str, roles: tuple[Role, ...]) -> None:
        super().__init__(name, role, [r.value for r in roles])


def check_dashboard(role: Role) -> None:
    """Staff at work on cases and compliance see the dashboard; no one else."""
    if role not in DASHBOARD_ROLES:
        raise DashboardNotPermittedError("dashboard", role.value, DASHBOARD_ROLES)


def check_drill_down(role: Role, identity: Identity | None = None) -> None:
    """Compliance alone sees who was refused what, read by read; not a compliance officer
    scoped to some candidates, as each read names its candidate (and its reader, a
    candidate's portal link among them), across the store. Asked before the query is looked
    at, so a caller refused learns nothing of its rules."""
    if role not in DRILL_DOWN_ROLES:
        raise DashboardNotPermittedError("dashboard-refusals", role.value, DRILL_DOWN_ROLES)
    check_whole_store(identity, DRILL_DOWN)


class RefusedReads(Command):
    """The reads refused on `day` (UTC), of `principal` and under `policy` when given."""

    day: date = Field(description="the day (UTC) of the dashboard's bar, YYYY-MM-DD")
    principal: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=NAME_RULE)]
        | None
    ) = Field(default=None, description="only this principal's refused reads")
    policy: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_POLICY, pattern=POLICY_RULE)]
        | None
    ) = Field(default=None, description=f"only those this policy decided (`{NO_POLICY}`: none)")
    cursor: Cursor = None
    limit: Limit = 50


class RefusedRead(Result):
    """One refused read, as the access log recorded it: who, how signed in, why, which view
    of which candidate, and the policies that refused it. No value."""

    access_id: UUID
    candidate_id: UUID
    at: datetime
    position: int = Field(description="the access event's place in the log")
    principal: str
    role: str
    authentication: str
    purpose: str
    view: str
    withheld: list[str] = Field(description="the data categories it asked for, refused")
    policy_ids: list[str] = Field(description="the policies that decided it (none: empty)")


class RefusalPage(Result):
    """One page of a day's refused reads, and the cursor of the next (None: the last)."""

    day: date
    principal: str | None
    policy: str | None
    items: list[RefusedRead] = Field(max_length=MAX_LIMIT)
    next_cursor: str | None = Field(default=None, max_length=MAX_CURSOR)
    limit: int


class RefusalQueries(DashboardQueries):
    def dashboard_for(
        self, role: Role, chain: ChainHealth | None = None, identity: Identity | None = None
    ) -> DashboardSummary:
        """The dashboard summary, for staff only; refusals by principal for compliance only,
        and not for an `identity` scoped to some candidates: a principal refused may be a
        candidate's portal link, named `candidate:<id>` (counts name no one)."""
        check_dashboard(role)
        summary = self.dashboard_summary(chain)
        if role in DRILL_DOWN_ROLES and not (identity is not None and identity.assignments):
            return summary
        refusals = summary.refusals.model_copy(
            update={
                "by_principal": {},
                "days": [d.model_copy(update={"by_principal": {}}) for d in summary.refusals.days],
            }
        )
        return summary.model_copy(update={"refusals": refusals})

    def refused_reads(
        self, query: RefusedReads, role: Role, identity: Identity | None = None
    ) -> RefusalPage:
        """The reads refused on a day (of a principal, under a policy), oldest first, a page
        at a time; compliance officers not scoped to some candidates only."""
        check_drill_down(role, identity)
        view = refusal_view(query.day.isoformat(), query.principal, query.policy)
        after = decode_cursor(query.cursor, view)
        found = self.read_model().page(view, after, query.limit + 1, frozenset())
        rows = found[: query.limit]
        following = None
        if len(found) > query.limit:
            last = rows[-1]
            following = encode_cursor(f"{last['at']}|{last['access_id']}", view)
        return RefusalPage(
            day=query.day,
            principal=query.principal,
            policy=query.policy,
            items=[RefusedRead.model_validate(row) for row in rows],
            next_cursor=following,
            limit=query.limit,
        )
