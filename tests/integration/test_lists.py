"""Lists of candidates, investigations and reports by status, a page at a time, on each backend.

After a story in which many candidates reach every stage (driven through the use cases), each
list filtered by each status holds exactly what the aggregates (or, for candidates, the story)
say, in its order; paging through it with any page size meets every item once; a cursor that
is not ours is invalid input naming `cursor`; the lists rebuilt from the log equal those kept
as it grew; and no personal value of the story is in any list row. (The query plans:
test_list_plans.py.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson
import pytest
from pydantic import ValidationError

from domain.classification import PersonalField
from domain.errors import InvalidInputError
from domain.investigation import Investigation, InvestigationStatus
from domain.report import Report, ReportStatus
from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.runner import ViewRunner
from projections import events as ev
from projections.listing import LIST_VIEWS, list_view
from projections.read_views import ReadViews
from projections.rows import MemoryRows
from services.access import Role
from services.application import Backcheck
from services.lists import (
    ListCandidates,
    ListInvestigations,
    ListNotPermittedError,
    ListReports,
    encode_cursor,
)
from tests import story as s
from tests.conftest import FakeClock
from tests.listing_story import Stage, Told, story_of

ALL_CANDIDATES = list_view("candidate")


def runner_of(app: Backcheck) -> ViewRunner:
    assert isinstance(app.views, ViewRunner)
    return app.views


def walk(app: Backcheck, kind: str, status: Any, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every item of one list, page after page; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = lister(app, kind)(status, cursor, limit)
        pages += 1
        assert page.limit == limit
        assert len(page.items) <= limit
        items += [item.model_dump(mode="json") for item in page.items]
        if page.next_cursor is None:
            return items, pages
        assert len(page.items) == limit, "a page before the last is full"
        cursor = page.next_cursor
        assert pages < 1000


def lister(app: Backcheck, kind: str) -> Any:
    def candidates(status: Any, cursor: str | None, limit: int) -> Any:
        query = ListCandidates(status=status, cursor=cursor, limit=limit)
        return app.list_candidates(query, Role.RECRUITER)

    def investigations(status: Any, cursor: str | None, limit: int) -> Any:
        query = ListInvestigations(status=status, cursor=cursor, limit=limit)
        return app.list_investigations(query, Role.INVESTIGATOR)

    def reports(status: Any, cursor: str | None, limit: int) -> Any:
        return app.list_reports(
            ListReports(status=status, cursor=cursor, limit=limit), Role.REVIEWER
        )

    return {"candidate": candidates, "investigation": investigations, "report": reports}[kind]


def all_of(app: Backcheck, kind: str, status: Any = None) -> list[dict[str, Any]]:
    return walk(app, kind, status, 200)[0]


def ids(items: list[dict[str, Any]], kind: str) -> list[UUID]:
    return [UUID(item[f"{kind}_id"]) for item in items]


def created(app: Backcheck, created_class: Any) -> list[UUID]:
    return [event.originator_id for _, event in app.replay() if type(event) is created_class]


def list_rows(app: Backcheck) -> list[tuple[str, str, str, dict[str, Any]]]:
    runner = runner_of(app)
    runner.catch_up()
    return [row for row in runner.store.dump() if row[0] in LIST_VIEWS]


class TestLists:
    @pytest.fixture
    def app(self, settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
        application = build_app(settings, clock=clock)
        yield application
        application.close()

    @pytest.fixture
    def told(self, app: Backcheck, clock: FakeClock) -> Told:
        return story_of(app, clock)

    def test_candidates_by_stage_are_where_the_story_left_each(
        self, app: Backcheck, told: Told
    ) -> None:
        for stage in Stage:
            listed = all_of(app, "candidate", stage)
            expected = {c for c, at in told.stages.items() if at is stage}
            assert set(ids(listed, "candidate")) == expected, stage
            assert {item["status"] for item in listed} <= {stage.value}
            assert len(listed) == len(expected)
        everyone = all_of(app, "candidate")
        assert set(ids(everyone, "candidate")) == set(told.stages)
        assert all(told.stages[UUID(i["candidate_id"])].value == i["status"] for i in everyone)
        # every stage is met in the story: no list is tested only empty
        assert set(told.stages.values()) == set(Stage)

    def test_investigations_and_reports_by_status_are_what_their_aggregates_say(
        self, app: Backcheck, told: Told
    ) -> None:
        for kind, cls, statuses, made in (
            ("investigation", Investigation, InvestigationStatus, ev.InvestigationPlanned),
            ("report", Report, ReportStatus, ev.ReportCompiled),
        ):
            aggregates = {i: app.repository.get(i) for i in created(app, made)}
            assert all(isinstance(a, cls) for a in aggregates.values())
            for status in statuses:
                listed = all_of(app, kind, status)
                expected = {i for i, a in aggregates.items() if a.status is status}
                assert set(ids(listed, kind)) == expected, status
                assert len(listed) == len(expected)
            # `all`: every one, in the order they were created (then by id)
            everyone = all_of(app, kind)
            order = sorted(aggregates, key=lambda i: (aggregates[i].created_on, str(i)))
            assert ids(everyone, kind) == order
        # the domain's own moves, not only the obvious ones
        inv = told.investigations
        assert app.repository.get(inv["resumed to planned"]).status is InvestigationStatus.PLANNED
        assert app.repository.get(inv["reopened"]).status is InvestigationStatus.IN_PROGRESS
        planned = ids(all_of(app, "investigation", InvestigationStatus.PLANNED), "investigation")
        assert set(planned) == {inv["planned"], inv["resumed to planned"]}
        statuses_met = {a.status for a in map(app.repository.get, created(app, made))}
        assert ReportStatus.CHANGES_REQUESTED in statuses_met

    def test_a_status_list_is_in_the_order_its_items_took_that_status(
        self, app: Backcheck, told: Told
    ) -> None:
        drafts = app.list_reports(ListReports(awaiting_review=True), Role.REVIEWER).items
        assert len(drafts) == 2
        assert (
            drafts == app.list_reports(ListReports(status=ReportStatus.DRAFT), Role.REVIEWER).items
        )
        for kind, statuses in (
            ("candidate", list(Stage)),
            ("investigation", list(InvestigationStatus)),
            ("report", list(ReportStatus)),
        ):
            for status in statuses:
                listed = all_of(app, kind, status)
                keys = [(i["status_since"], i[f"{kind}_id"]) for i in listed]
                assert keys == sorted(keys)
        # the time a candidate took a stage is when it happened, not when they registered
        since = {UUID(i["candidate_id"]): i["status_since"] for i in all_of(app, "candidate")}
        registered = {UUID(i["candidate_id"]): i["registered_at"] for i in all_of(app, "candidate")}
        assert all(since[c] >= registered[c] for c in told.stages)
        later = {Stage.CONSENTED, Stage.CONSENT_WITHDRAWN, Stage.ERASURE_REQUESTED, Stage.ERASED}
        moved = [c for c, at in told.stages.items() if at in later]
        assert len(moved) == 6
        assert all(since[c] > registered[c] for c in moved)

    @pytest.mark.parametrize("limit", [1, 2, 50])
    def test_paging_meets_every_item_once_in_order_whatever_the_page_size(
        self, app: Backcheck, told: Told, limit: int
    ) -> None:
        for kind, statuses in (
            ("candidate", [None, *Stage]),
            ("investigation", [None, *InvestigationStatus]),
            ("report", [None, *ReportStatus]),
        ):
            for status in statuses:
                whole = all_of(app, kind, status)
                paged, pages = walk(app, kind, status, limit)
                assert paged == whole
                assert len(set(ids(paged, kind))) == len(paged)
                assert pages == max(1, math.ceil(len(whole) / limit))

    def test_a_cursor_not_given_out_is_invalid_input_naming_the_cursor(
        self, app: Backcheck, told: Told
    ) -> None:
        first = app.list_candidates(ListCandidates(limit=1), Role.RECRUITER)
        assert first.next_cursor is not None
        good_key = "2026-03-02T09:00:00.000000Z|" + str(UUID(int=7))
        for bad in (
            "not a cursor!",
            "%%%",
            encode_cursor("hello", ALL_CANDIDATES),
            encode_cursor(good_key.replace("|", "/"), ALL_CANDIDATES),
            encode_cursor(good_key + "x", ALL_CANDIDATES),
            encode_cursor(good_key, ALL_CANDIDATES)[:-3],
            first.next_cursor + "A",
            "ÿÿÿÿ",
        ):
            for run in (
                lambda c: app.list_candidates(ListCandidates(cursor=c), Role.RECRUITER),
                lambda c: app.list_investigations(ListInvestigations(cursor=c), Role.RECRUITER),
                lambda c: app.list_reports(ListReports(cursor=c), Role.RECRUITER),
            ):
                with pytest.raises(InvalidInputError) as refused:
                    run(bad)
                assert type(refused.value) is InvalidInputError
                assert refused.value.details["field"] == "cursor", bad
                assert "cursor" in refused.value.message
        # a well-formed key is a place in the list, whether or not a row has it
        page = app.list_candidates(
            ListCandidates(cursor=encode_cursor(good_key, ALL_CANDIDATES)), Role.RECRUITER
        )
        assert len(page.items) == len(told.stages)
        with pytest.raises(ValidationError) as too_long:
            ListCandidates(cursor="A" * 201)
        assert too_long.value.errors()[0]["loc"] == ("cursor",)

    def test_lists_are_refused_to_candidates_and_hiring_managers(
        self, app: Backcheck, told: Told
    ) -> None:
        for role in (Role.CANDIDATE, Role.HIRING_MANAGER):
            with pytest.raises(ListNotPermittedError) as refused:
                app.list_candidates(ListCandidates(), role)
            assert role.value in refused.value.message
            with pytest.raises(ListNotPermittedError):
                app.list_reports(ListReports(awaiting_review=True), role)
        for role in (Role.RECRUITER, Role.INVESTIGATOR, Role.REVIEWER, Role.COMPLIANCE):
            assert app.list_investigations(ListInvestigations(), role).items

    def test_awaiting_review_with_another_status_is_invalid_naming_the_field(
        self, app: Backcheck, told: Told
    ) -> None:
        query = ListReports(awaiting_review=True, status=ReportStatus.APPROVED)
        with pytest.raises(InvalidInputError) as refused:
            app.list_reports(query, Role.REVIEWER)
        assert refused.value.details["field"] == "awaiting_review"

    def test_the_lists_rebuilt_from_the_log_equal_those_kept_as_it_grew(
        self, app: Backcheck, told: Told
    ) -> None:
        runner = runner_of(app)
        runner.catch_up()
        kept = runner.store.dump()
        reference, projection = MemoryRows(), ReadViews()
        for position, event in app.replay():
            projection.process(event, reference, position)

        runner.rebuild(batch=7)  # batches that cut through the story's saves

        assert runner.store.dump() == kept
        assert list(reference.dump()) == kept
        assert len([row for row in kept if row[0] in LIST_VIEWS]) > 3 * len(told.stages)

    def test_no_personal_value_of_the_story_is_in_any_list_row(
        self, app: Backcheck, told: Told
    ) -> None:
        rows = list_rows(app)
        assert rows
        text = orjson.dumps([doc for *_, doc in rows]).decode()
        for value in told.personal | {s.EMPLOYER, s.PURPOSE, s.RECRUITER, s.INVESTIGATOR}:
            assert value not in text

        def no_field(value: Any) -> None:
            assert not isinstance(value, PersonalField)
            for inner in value.values() if isinstance(value, dict) else []:
                no_field(inner)

        for *_, doc in rows:
            no_field(doc)
        # every row belongs to its candidate, as every view's does (erasure finds them)
        for view, _, subject, doc in rows:
            assert subject == doc["candidate_id"], view

    def test_an_erased_candidate_is_listed_as_erased_and_nowhere_else(
        self, app: Backcheck, told: Told
    ) -> None:
        (gone,) = [c for c, at in told.stages.items() if at is Stage.ERASED]
        theirs = [(view, doc) for view, _, subject, doc in list_rows(app) if subject == str(gone)]
        assert {view for view, _ in theirs} == {
            "listed:candidate",
            list_view("candidate"),
            list_view("candidate", Stage.ERASED.value),
        }
        assert all(doc["status"] == Stage.ERASED.value for _, doc in theirs)
