"""`audit reads` as a use case (services/read_log.py), on each backend: every read and
disclosure of a period, of one principal or everyone, refused or not, oldest first, a page at
a time, from the access log's lists by time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from domain.errors import InvalidInputError
from infra.bootstrap import build_app
from infra.config import Settings
from projections.access_log import SEALED_JUSTIFICATION
from services.access import Role
from services.application import Backcheck
from services.read_log import ListReads
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_access_log_entries import (
    COMPLIANCE,
    STRANGER,
    WHY,
    read,
    refused_read,
)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def test_the_reads_of_one_principal_between_two_moments_a_page_at_a_time(
    app: Backcheck, clock: FakeClock
) -> None:
    one, two = s.consented_candidate(app, "Li Lei"), s.consented_candidate(app, "Han Mei")
    start = clock()
    mine = []
    for n in range(5):
        clock.advance(minutes=1)
        mine.append(read(app, (one, two)[n % 2], s.RECRUITER, Role.RECRUITER, purpose=s.PURPOSE))
        read(app, one, COMPLIANCE, Role.COMPLIANCE, purpose=s.PURPOSE, break_glass=WHY)
    refused_read(app, two)
    end = clock()
    clock.advance(minutes=5)
    read(app, one, s.RECRUITER, Role.RECRUITER, purpose=s.PURPOSE)  # after the period

    pages, cursor = [], None
    while True:
        page = app.list_reads(
            ListReads(principal=s.RECRUITER, since=start, until=end, cursor=cursor, limit=2)
        )
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    refused = app.list_reads(ListReads(since=start, refused=True)).items
    everyone = app.list_reads(ListReads(since=start, until=end, limit=200)).items

    assert [len(p) for p in pages] == [2, 2, 1]
    seen = [item for p in pages for item in p]
    assert [item.access_id for item in seen] == mine
    assert [item.candidate_id for item in seen] == [one.candidate_id, two.candidate_id] * 2 + [
        one.candidate_id
    ]
    assert all(item.principal == s.RECRUITER and item.returned for item in seen)
    assert [(r.principal, r.candidate_id, r.outcome) for r in refused] == [
        (STRANGER, two.candidate_id, "refused")
    ]
    assert refused[0].policy_ids
    assert len(everyone) == 11
    # each break-glass read said as such; its justification is sealed (decision 0041)
    assert sum(1 for r in everyone if r.break_glass == SEALED_JUSTIFICATION) == 5
    assert all(WHY not in str(r) for r in everyone)
    # a cursor pages the reads it was given out for: not everyone's, not another period's
    first = app.list_reads(ListReads(principal=s.RECRUITER, since=start, until=end, limit=2))
    assert first.next_cursor is not None
    for other in (
        ListReads(since=start, until=end),
        ListReads(principal=s.RECRUITER, since=start),
        ListReads(principal=s.RECRUITER, since=start, until=end, refused=True),
    ):
        with pytest.raises(InvalidInputError, match="another list") as foreign:
            app.list_reads(other.model_copy(update={"cursor": first.next_cursor}))
        assert foreign.value.details == {"field": "cursor"}


def test_a_moment_without_its_offset_or_a_cursor_not_given_out_is_refused(app: Backcheck) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        ListReads.model_validate({"from": "2026-12-01T00:00:00"})
    with pytest.raises(InvalidInputError, match="cursor"):
        app.list_reads(ListReads(cursor="bm90LWEta2V5"))
