"""The versions a use case is held to and the versions its write made, for the entry point
that runs it: a client's `If-Match` (`expecting`), checked where the use case loads, and the
version each saved aggregate reached (`noting_writes`), which a command's answer carries
(HTTP's `ETag`) instead of a version read after the write."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import Aggregate


@dataclass(frozen=True)
class WeakTag:
    """A version named by a weak entity tag (`W/"3"`). If-Match compares tags strongly (RFC
    9110 13.1.1): a weak tag matches no version, not even its own. Checked where the
    aggregate is loaded all the same, so a missing one is still not found."""

    version: int


Expected = int | WeakTag
_expected: ContextVar[dict[UUID, Expected] | None] = ContextVar("expected", default=None)


@contextmanager
def expecting(versions: dict[UUID, Expected]) -> Iterator[None]:
    """While inside, loading one of these aggregates at another version (or named by a weak
    tag) refuses the use case (`VersionMismatchError`): a client's `If-Match`, checked where
    the use case decides, so nothing written between the client's read and this write goes
    unnoticed (a write after the load collides in the store, as every concurrent write
    does)."""
    token = _expected.set(versions)
    try:
        yield
    finally:
        _expected.reset(token)


_written: ContextVar[dict[UUID, int] | None] = ContextVar("written", default=None)


@contextmanager
def noting_writes() -> Iterator[dict[UUID, int]]:
    """While inside, each aggregate the use case saves is noted with the version it was
    saved at: a command's answer carries the version it wrote (HTTP's `ETag`), not one read
    after the write, which a concurrent change could have moved on."""
    written: dict[UUID, int] = {}
    token = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(token)


def expected_version(aggregate_id: UUID) -> Expected | None:
    """The version the running use case's caller expects of this aggregate, if any."""
    expected = _expected.get()
    return None if expected is None else expected.get(aggregate_id)


def note_written(aggregates: Iterable[Aggregate]) -> None:
    """These aggregates were saved at their current versions (noted only inside
    `noting_writes`)."""
    if (written := _written.get()) is not None:
        written.update((a.id, a.version) for a in aggregates)
