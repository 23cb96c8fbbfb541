"""The recorded reads and disclosures across subjects, by time: the compliance officer's "what
did hr:anna see between T1 and T2", and the refused reads with why, over any period.

Answered from the access log's lists by time (projections/access_log.py, `reads_view`): a view
per filter (everyone or one principal; every read or the refused ones), keyed
"<time>|<id>", so a page between two times is one range of the views' primary key and costs
what its rows do, whatever the store holds; nothing is scanned. The rows name candidates by
id, principals, purposes, categories, policies and consents, never a personal value, so
listing them is no read of anyone's personal data and leaves no access record (as the lists
and the refusals' drill-down do).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints

from projections.access_log import reads_view
from projections.listing import stamp
from services.answers import access_entry
from services.dto import AccessEntry, Command, Moment, Result
from services.lists import MAX_CURSOR, MAX_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from services.unit import UnitOfWork

MAX_PRINCIPAL = 200  # an actor as recorded: a principal's name, or what a command stated
# Any one line: disclosures record the actor a command stated, not always a principal's name.
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"


class ListReads(Command):
    """The reads and disclosures recorded between two moments (of one principal, only the
    refused ones when asked), oldest first, a page at a time."""

    # `from` is the field's name on every transport (`--from`); `since` in Python
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    principal: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_PRINCIPAL, pattern=_ONE_LINE)]
        | None
    ) = Field(default=None, description="only this principal's (who read, or handed over)")
    since: Moment | None = Field(
        default=None, alias="from", description="from this moment on (with its offset)"
    )
    until: Moment | None = Field(default=None, description="up to this moment (with its offset)")
    refused: bool = Field(default=False, description="only the refused reads")
    cursor: Cursor = None
    limit: Limit = 50


class RecordedRead(AccessEntry):
    """A read or disclosure as the access log has it, with whose data it was."""

    candidate_id: UUID


class ReadsPage(Result):
    items: list[RecordedRead] = Field(max_length=MAX_LIMIT)
    next_cursor: str | None = Field(default=None, max_length=MAX_CURSOR)
    limit: int


class ReadLogQueries(UnitOfWork):
    def list_reads(self, query: ListReads) -> ReadsPage:
        """The recorded reads and disclosures of a period, oldest first: one range of their
        list view a page (at most `limit` rows and one more are read)."""
        end = stamp(query.until) if query.until is not None else None
        view = reads_view(query.principal, refused=query.refused)
        start = stamp(query.since) if query.since is not None else None
        listed = f"{view}|from={start or ''}|until={end or ''}"  # the list a cursor pages
        after = decode_cursor(query.cursor, listed)
        if start is not None:
            after = max(after or "", start)
        found = self.read_model().page(view, after, query.limit + 1, frozenset())
        if end is not None:
            found = [row for row in found if row["at"] <= end]
        rows = found[: query.limit]
        following = None
        if len(found) > query.limit:
            last = rows[-1]
            following = encode_cursor(f"{last['at']}|{last['access_id']}", listed)
        return ReadsPage(
            items=[
                RecordedRead(
                    **access_entry(row).model_dump(), candidate_id=UUID(row["candidate_id"])
                )
                for row in rows
            ],
            next_cursor=following,
            limit=query.limit,
        )
