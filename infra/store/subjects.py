"""The subject index: which stored events are about which data subject.

A compliance officer replaying one candidate must not wait longer because the company screened
more people. So each recorder writes, in the same transaction as the events, one row
(subject, position) for every event that names a data subject (its `candidate_id`, in clear in
every stored state: services/timeline.py and the history filter on the same attribute). A
subject's events are then read by the index's primary key and the log's own position, never by
a scan (tests/integration/test_list_plans.py holds both backends to that).

The index is written from the stored state, not from the domain event, so that every way into
the log (the use cases, a copy of a store, a test's raw record) is indexed alike, and a store
written before the index gets it filled in once, by the same rule, when a recorder of this
version first sets up its tables (in that same set-up transaction: all of it or none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

import orjson

SUBJECT_FIELD = "candidate_id"
_MARKER = b'"candidate_id"'
BACKFILL_BATCH = 5_000


def subjects_table(events_table_name: str) -> str:
    """`stored_events` → `stored_subjects` (as the chain is `stored_chain`)."""
    return events_table_name.removesuffix("_events") + "_subjects"


def subject_of(state: bytes) -> UUID | None:
    """The data subject a stored event's state names, if any. A state that is not a JSON
    object, or whose subject is no UUID, names none (it is still stored and chained; the
    mapper is what refuses it on the way out)."""
    if _MARKER not in state:  # most states are decoded only when they may name one
        return None
    try:
        decoded = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    value = decoded.get(SUBJECT_FIELD) if isinstance(decoded, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def index_rows(positions: Iterable[int], states: Iterable[bytes]) -> list[tuple[UUID, int]]:
    """(subject, position) for each record that names a subject."""
    rows = []
    for position, state in zip(positions, states, strict=True):
        subject = subject_of(state)
        if subject is not None:
            rows.append((subject, position))
    return rows


def backfill(
    read_after: Callable[[int, int], Sequence[tuple[int, bytes]]],
    write: Callable[[list[tuple[UUID, int]]], None],
) -> int:
    """Indexes every record already in the log, a batch of positions at a time (memory bounded
    by the batch); returns how many rows it wrote. `read_after(position, limit)` gives
    (position, state) in position order after `position`."""
    written = 0
    for batch in _batches(read_after):
        rows = index_rows((p for p, _ in batch), (s for _, s in batch))
        if rows:
            write(rows)
            written += len(rows)
    return written


def _batches(
    read_after: Callable[[int, int], Sequence[tuple[int, bytes]]],
) -> Iterator[Sequence[tuple[int, Any]]]:
    position = 0
    while batch := read_after(position, BACKFILL_BATCH):
        yield batch
        position = batch[-1][0]
