"""The list views' rules, without a store: how a candidate's stage moves, that every event they
list by reaches them, that they are declared to hold no personal value, and that the list
queries' every input is bounded and every cursor checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import InvalidInputError
from projections import events as ev
from projections.listing import (
    KEY,
    LIST_VIEWS,
    STAGE_EVENTS,
    CandidateStage,
    Listing,
    list_view,
    next_stage,
    stamp,
)
from projections.read_views import PLAIN_VIEWS, ReadViews
from services.lists import (
    MAX_CURSOR,
    ListCandidates,
    ListInvestigations,
    ListReports,
    decode_cursor,
    encode_cursor,
)
from tests.unit.test_input_bounds import unbounded

Stage = CandidateStage
PIPELINE = [
    Stage.REGISTERED,
    Stage.CONSENT_REQUESTED,
    Stage.CONSENTED,
    Stage.INVESTIGATING,
    Stage.REPORTED,
]


def test_every_event_the_lists_act_on_reaches_them_through_the_read_views() -> None:
    # ReadViews hands an event to the lists only when it handles it itself
    assert set(Listing().handlers) <= set(ReadViews().handlers)


def test_every_event_that_moves_a_candidate_is_one_the_lists_act_on() -> None:
    # the dashboard's pipeline moves on the same events, by the same rules
    assert set(Listing().handlers) >= STAGE_EVENTS
    assert ev.ConsentExpired not in STAGE_EVENTS  # a consent expires in the normal course


def test_the_list_views_are_declared_to_hold_no_personal_value() -> None:
    assert LIST_VIEWS <= PLAIN_VIEWS
    assert list_view("report", "draft") in LIST_VIEWS
    assert list_view("investigation", "in progress") in LIST_VIEWS
    assert list_view("candidate") == "list:candidate:all"
    assert "profile" not in PLAIN_VIEWS


def test_the_pipeline_stages_move_only_forward() -> None:
    for i, current in enumerate(PIPELINE):
        for j, reached in enumerate(PIPELINE):
            assert next_stage(current, reached) is (reached if j > i else current)


def test_a_withdrawal_moves_any_pipeline_stage_and_a_new_consent_moves_on_from_it() -> None:
    for current in PIPELINE:
        assert next_stage(current, Stage.CONSENT_WITHDRAWN) is Stage.CONSENT_WITHDRAWN
    assert next_stage(Stage.CONSENT_WITHDRAWN, Stage.CONSENT_REQUESTED) is Stage.CONSENT_REQUESTED
    assert next_stage(Stage.CONSENT_WITHDRAWN, Stage.CONSENTED) is Stage.CONSENTED


def test_an_erasure_request_is_left_only_for_erasure_and_erasure_is_final() -> None:
    for current in [*PIPELINE, Stage.CONSENT_WITHDRAWN]:
        assert next_stage(current, Stage.ERASURE_REQUESTED) is Stage.ERASURE_REQUESTED
    for reached in Stage:
        expected = Stage.ERASED if reached is Stage.ERASED else Stage.ERASURE_REQUESTED
        assert next_stage(Stage.ERASURE_REQUESTED, reached) is expected
        assert next_stage(Stage.ERASED, reached) is Stage.ERASED


def test_times_in_keys_sort_as_the_times_do_whatever_their_zone_and_precision() -> None:
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    times = [
        base,
        base + timedelta(microseconds=1),
        (base + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=8))),
        base + timedelta(days=400),
    ]
    stamps = [stamp(t) for t in times]
    assert stamps == sorted(stamps)
    assert len({len(s) for s in stamps}) == 1
    assert stamps[2] == "2026-03-02T09:00:01.000000Z"


def test_a_cursor_is_the_key_it_was_made_from() -> None:
    key = "2026-03-02T09:00:00.000000Z|01234567-89ab-cdef-0123-456789abcdef"
    assert KEY.fullmatch(key)
    view = list_view("candidate")
    cursor = encode_cursor(key, view)
    assert "=" not in cursor
    assert len(cursor) <= MAX_CURSOR
    assert decode_cursor(cursor, view) == key
    assert decode_cursor(None, view) is None
    for bad in ("", "+/==", encode_cursor(key.upper(), view), encode_cursor(key + "|", view)):
        with pytest.raises(InvalidInputError) as refused:
            decode_cursor(bad, view)
        assert refused.value.details == {"field": "cursor"}


def test_a_cursor_is_refused_by_every_list_but_the_one_that_gave_it_out() -> None:
    """A `/v1/candidates` cursor was taken by `/v1/reports` (and by the same list under
    another status) as a place in it: the key format is the same for every list."""
    key = "2026-03-02T09:00:00.000000Z|01234567-89ab-cdef-0123-456789abcdef"
    cursor = encode_cursor(key, list_view("candidate"))
    for other in (list_view("report"), list_view("candidate", "submitted"), "reads"):
        with pytest.raises(InvalidInputError) as refused:
            decode_cursor(cursor, other)
        assert refused.value.details == {"field": "cursor"}
        assert "another list" in refused.value.message


@pytest.mark.parametrize("query", [ListCandidates, ListInvestigations, ListReports])
def test_every_input_of_a_list_query_has_a_bound(query: type) -> None:
    schema = query.model_json_schema()
    assert unbounded(schema, schema.get("$defs", {}), query.__name__) == []
    assert schema["properties"]["limit"]["maximum"] == 200
