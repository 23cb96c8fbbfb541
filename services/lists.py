"""Lists of candidates, investigations and reports, a page at a time, filtered by status.

Each list is read from its list view (projections/listing.py): a page is one range of the
views' primary key, so it costs what its rows do, whether the store holds a thousand events
or a million. The rows hold ids, statuses, check types, times and counts, never a personal
value, so a list is no read of anyone's personal data and leaves no access record; it is
staff business all the same: a candidate, or a hiring manager (who may see only what was
disclosed to them), is refused.

A page names the cursor of the next one (`next_cursor`, None on the last page). Cursors are
opaque to callers (base64url of the last row's key and a digest of the list's view: the list
and its filters) and checked when they come back: one that is not a cursor of ours, or is one
of another list or of this list with other filters, is invalid input naming the field
`cursor`, never a 500, an empty page or a page of the wrong list. Paging follows the list's
order (status lists: by when each item took its status; `all`: by when it was created, then
by id), so an item that keeps its status is met exactly once however its page boundaries
fall.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.check import CheckType
from domain.errors import InvalidInputError
from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from projections.listing import KEY, CandidateStage, key_of, list_view
from services.access import Role
from services.dto import MAX_CHECKS, Command, Result
from services.errors import ScopedListError, UseCaseNotPermittedError
from services.identity import Identity, current_identity
from services.unit import UnitOfWork

__all__ = [
    "CandidateItem",
    "CandidateStage",
    "InvestigationItem",
    "ListCandidates",
    "ListInvestigations",
    "ListNotPermittedError",
    "ListQueries",
    "ListReports",
    "Page",
    "ReportItem",
]

MAX_LIMIT = 200
MAX_CURSOR = 200
# Who may list: staff at work on cases, compliance, and internal services.
LIST_ROLES = (Role.RECRUITER, Role.INVESTIGATOR, Role.REVIEWER, Role.COMPLIANCE, Role.SERVICE)
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")
_TAG = re.compile(r"[0-9a-f]{12}")

Cursor = Annotated[
    str | None,
    Field(
        default=None,
        max_length=MAX_CURSOR,
        description="the `next_cursor` of the page before; none for the first page",
    ),
]
Limit = Annotated[int, Field(default=50, ge=1, le=MAX_LIMIT, description="items per page")]


class ListNotPermittedError(UseCaseNotPermittedError):
    """A principal whose role may not list asked for a list (403). Nothing was read, so
    nothing is recorded."""

    def __init__(self, kind: str, role: str) -> None:
        super().__init__(f"list-{kind}s", role, sorted(r.value for r in LIST_ROLES))
        self.kind = kind


def check_lister(kind: str, role: Role, identity: Identity | None) -> None:
    """Who may list `kind`s: staff at work on cases, compliance, internal services; none of
    them scoped to some candidates, as a list names every candidate. Asked before the query
    is looked at, so a caller refused learns nothing of its rules."""
    if role not in LIST_ROLES:
        raise ListNotPermittedError(kind, role.value)
    if identity is not None and identity.assignments:
        raise ScopedListError(identity.principal, kind)


# --- queries ------------------------------------------------------------------------------


class ListCandidates(Command):
    status: CandidateStage | None = Field(default=None, description="only candidates at it")
    cursor: Cursor = None
    limit: Limit = 50


class ListInvestigations(Command):
    status: InvestigationStatus | None = Field(default=None, description="only those in it")
    cursor: Cursor = None
    limit: Limit = 50


class ListReports(Command):
    status: ReportStatus | None = Field(default=None, description="only reports in it")
    awaiting_review: bool = Field(
        default=False, description="only reports awaiting review (those in `draft`)"
    )
    cursor: Cursor = None
    limit: Limit = 50


# --- answers ------------------------------------------------------------------------------


class CandidateItem(Result):
    candidate_id: UUID
    status: CandidateStage
    registered_at: datetime
    status_since: datetime
    investigations: int
    reports: int


class InvestigationItem(Result):
    investigation_id: UUID
    candidate_id: UUID
    consent_id: UUID
    status: InvestigationStatus
    check_types: list[CheckType] = Field(max_length=MAX_CHECKS)
    checks: int
    planned_at: datetime
    status_since: datetime
    due_by: datetime


class ReportItem(Result):
    report_id: UUID
    candidate_id: UUID
    investigation_id: UUID
    status: ReportStatus
    edition: int
    items: int
    disclosures: int
    legal_hold: bool
    compiled_at: datetime
    status_since: datetime


Item = TypeVar("Item", CandidateItem, InvestigationItem, ReportItem)
Doc = dict[str, Any]


class Page(BaseModel, Generic[Item]):
    """One page of a list, and the cursor of the next (None: this is the last)."""

    model_config = ConfigDict(frozen=True)

    items: list[Item] = Field(max_length=MAX_LIMIT)
    next_cursor: str | None = Field(default=None, max_length=MAX_CURSOR)
    limit: int


# --- cursors ------------------------------------------------------------------------------


def _list_tag(scope: str) -> str:
    """A short digest of the list a cursor pages (its view: the list and its filters)."""
    return hashlib.blake2b(scope.encode(), digest_size=6).hexdigest()


def encode_cursor(key: str, scope: str) -> str:
    """The cursor of the page after the row `key` of the list `scope` (its view's name, and
    any filter not in the name): bound to that list, refused by any other."""
    raw = f"{key}|{_list_tag(scope)}"
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, scope: str) -> str | None:
    """The row key a cursor of the list `scope` stands for; a cursor we did not give out, or
    gave out for another list (or this list with other filters), is invalid input."""
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR or not _CURSOR.fullmatch(cursor):
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        key, _, tag = raw.rpartition("|")
        if not KEY.fullmatch(key) or not _TAG.fullmatch(tag):
            raise ValueError
    except (ValueError, binascii.Error):
        raise InvalidInputError(
            "field 'cursor': not a cursor this service gave out; pass a page's `next_cursor` "
            "unchanged, or none for the first page",
            field="cursor",
        ) from None
    if tag != _list_tag(scope):
        raise InvalidInputError(
            "field 'cursor': this cursor pages another list, or this list with other filters; "
            "a cursor is taken only with the request whose page gave it out (same path and "
            "filters): ask for this list's first page without one",
            field="cursor",
        )
    return key


# --- the use cases ------------------------------------------------------------------------


class ListQueries(UnitOfWork):
    def list_candidates(self, query: ListCandidates, role: Role) -> Page[CandidateItem]:
        """Candidates by their stage in the pipeline (all when no status is given), in the
        order they took it; staff only."""
        items, after = self._page("candidate", query.status, query.cursor, query.limit, role)
        return Page[CandidateItem](
            items=[CandidateItem.model_validate(row) for row in items],
            next_cursor=after,
            limit=query.limit,
        )

    def list_investigations(self, query: ListInvestigations, role: Role) -> Page[InvestigationItem]:
        """Investigations by status (all when none is given), in the order they took it;
        staff only."""
        items, after = self._page("investigation", query.status, query.cursor, query.limit, role)
        return Page[InvestigationItem](
            items=[InvestigationItem.model_validate(row) for row in items],
            next_cursor=after,
            limit=query.limit,
        )

    def list_reports(self, query: ListReports, role: Role) -> Page[ReportItem]:
        """Reports by status (all when none is given); `awaiting_review` is the review queue,
        the drafts, longest waiting first. Staff only."""
        status = query.status
        if query.awaiting_review:
            if status not in (None, ReportStatus.DRAFT):
                raise InvalidInputError(
                    f"field 'awaiting_review': reports awaiting review are drafts, never "
                    f"{status.value!r}; give one of `awaiting_review` and `status`",
                    field="awaiting_review",
                )
            status = ReportStatus.DRAFT
        items, after = self._page("report", status, query.cursor, query.limit, role)
        return Page[ReportItem](
            items=[ReportItem.model_validate(row) for row in items],
            next_cursor=after,
            limit=query.limit,
        )

    def _page(
        self, kind: str, status: StrEnum | None, cursor: str | None, limit: int, role: Role
    ) -> tuple[list[Doc], str | None]:
        """The rows of one page of the `kind` list, and the next page's cursor."""
        check_lister(kind, role, current_identity())
        view = list_view(kind, status.value if status is not None else None)
        after = decode_cursor(cursor, view)
        # one row more than asked for: whether there is a next page, without counting
        found = self.read_model().page(view, after, limit + 1, frozenset())
        rows = found[:limit]
        if len(found) <= limit:
            return rows, None
        return rows, encode_cursor(key_of(kind, rows[-1], by_status=status is not None), view)
