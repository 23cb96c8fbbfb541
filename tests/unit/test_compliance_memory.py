"""`audit check` in bounded memory (issue 19): the check lets go of access and disclosure
records and commands' receipts once judged, and still finds an event out of sequence on one
of them, as it did while it held them all."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, AggregateCreated, CanMutateAggregate

from domain.access import Access
from domain.candidate import Candidate
from services.compliance import ONE_EVENT, StreamCheck, check_stream
from tests import story as s


def event_classes(cls: type[Aggregate]) -> set[type[Any]]:
    """The event classes the aggregate class declares, its base `Event` left out."""
    found = [getattr(cls, name) for name in dir(cls)]
    return {
        e
        for e in found
        if isinstance(e, type) and issubclass(e, CanMutateAggregate) and e is not cls.Event
    }


def read_of(candidate_id: UUID) -> Any:
    """A refused read of the candidate's profile, as an access record's one event."""
    record = Access.record(
        candidate_id=candidate_id,
        principal="growth:analyst",
        role="recruiter",
        purpose="marketing",
        view="profile",
        returned=(),
        withheld=("user.name",),
        outcome="refused",
        policy_ids=("purpose-must-be-consented",),
        policy_set_hash="0" * 64,
        consent_ids=(),
        authentication="operator",
    )
    (recorded,) = record.collect_events()
    return recorded


@pytest.mark.parametrize("kind", ONE_EVENT, ids=lambda k: k.__name__)
def test_what_the_check_lets_go_of_has_no_event_after_its_first(kind: type[Aggregate]) -> None:
    """Were a second event added to one of these, the check could no longer judge it."""
    assert event_classes(kind)
    assert all(issubclass(e, AggregateCreated) for e in event_classes(kind))


def test_the_kinds_the_check_holds_have_events_after_their_first() -> None:
    """The helper above tells the two apart: a candidate has more events to come."""
    assert not all(issubclass(e, AggregateCreated) for e in event_classes(Candidate))


def test_a_check_over_many_reads_holds_no_access_record() -> None:
    candidate = s.new_candidate()
    stream = [(1, *candidate.collect_events())]
    stream += [(n, read_of(candidate.id)) for n in range(2, 1002)]
    check = StreamCheck()

    assert list(check_stream(iter(stream), check)) == []

    assert list(check.held) == [candidate.id]


def test_a_second_first_event_on_an_access_record_is_out_of_sequence() -> None:
    recorded = read_of(uuid4())
    again = dataclasses.replace(recorded, originator_version=2)

    (found,) = check_stream(iter([(1, recorded), (2, again)]))

    assert (found.position, found.rule) == (2, "stream inconsistent")
    assert found.aggregate_id == recorded.originator_id
    assert "first event, stored as version 2" in found.detail


def test_a_later_event_on_an_access_record_is_out_of_sequence() -> None:
    """An access record is one event: another aggregate's event on its id is refused too."""
    recorded = read_of(uuid4())
    candidate = s.new_candidate()
    candidate._request_erasure("asked by the candidate", s.CANDIDATE)
    _, asked = candidate.collect_events()
    stray = dataclasses.replace(asked, originator_id=recorded.originator_id, originator_version=2)

    (found,) = check_stream(iter([(1, recorded), (2, stray)]))

    assert (found.position, found.rule, found.aggregate_id) == (
        2,
        "stream inconsistent",
        recorded.originator_id,
    )
