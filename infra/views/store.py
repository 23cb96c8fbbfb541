"""What a durable view store is, whatever its backend (`sqlite.py`, `postgres.py`).

A store is one of the library's tracking recorders (so `max_tracking_id`, `wait` and the
tracking table are the library's) plus a table of view rows, written with their tracking
position in one transaction. Within one batch, rows are cached and written once at the end
(`BatchRows`), so a rebuild touches each row once per batch rather than once per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Tracking

from infra.views.codec import Codec, Opened, Parsed
from projections.rows import Doc, Rows, ident


class Projection(Protocol):
    """What a store applies events with: the read views (projections/read_views.py) or the
    dashboard (projections/dashboard.py). Its version names what its rows hold.
    `shared_rows`: whether events of different subjects change the same rows (the
    dashboard's counts), so runs tracked apart (a worker's partitions) must still be applied
    one at a time."""

    version: int
    shared_rows: bool

    def process(self, event: Any, rows: Rows, position: int) -> None: ...


@dataclass(frozen=True)
class Advance(Tracking):
    """A run's tracking record, with the position the run follows: written only if the views
    still stand exactly there. Runners in several processes (or workers during a rebalance)
    may compute runs from the same position; a plain tracking record refuses only a run that
    ends at or before the stored position, so one that overlaps it (applied through 10 by
    another, this one from 1 to 12) was applied twice. Now it is refused whole."""

    after: int = 0


def refused_because(tracking: Tracking, done: int | None) -> str | None:
    """Why a run's tracking record may not be written over the stored position `done`."""
    stored = done or 0
    if isinstance(tracking, Advance) and stored != tracking.after:
        return (
            f"{tracking.application_name} stands at {stored}, not at {tracking.after} "
            f"where this run begins: applied by another runner meanwhile"
        )
    if stored >= tracking.notification_id:
        name, position = tracking.application_name, tracking.notification_id
        return f"{name} is at {stored} already, past {position}: applied by another runner"
    return None


Key = tuple[str, str]
# The stored state of events a batch applies (the event store's bytes, values sealed), by
# their position: a value they hold keeps its event's envelope in the views (`Codec.note_event`)
Stored = Mapping[int, bytes | str]
Run = tuple[Sequence[tuple[int, Any]], Tracking]  # events (position, event), then their tracking
Progress = Callable[[int, int], None]
Dumped = tuple[str, str, str, Doc]  # view, key, subject, row


class ViewStore(Protocol):
    """What the runner, the workers and the query service need from a durable view store."""

    codec: Codec

    def create_table(self) -> None: ...

    def apply(
        self,
        events: Sequence[tuple[int, Any]],
        tracking: Tracking,
        projection: Projection,
        stored: Stored | None = None,
    ) -> set[Key]:
        """The events projected and written with their tracking record, in one transaction;
        returns (view, subject) of the rows that changed. `stored`: the stored state of
        those events the caller has, by position."""
        ...

    def apply_tracked(
        self, runs: Sequence[Run], projection: Projection, stored: Stored | None = None
    ) -> set[Key]:
        """Several runs of events, each with its own tracking record (a worker's partitions),
        in one transaction: all applied, or none."""
        ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def get_parsed(self, view: str, key: str) -> Parsed | None: ...

    def of_subject_parsed(self, view: str, subject: str) -> list[Parsed]: ...

    def page_parsed(self, view: str, after: str | None, limit: int) -> list[Parsed]:
        """At most `limit` rows of `view` with a key after `after` (from the first when None),
        in key order: one range of the primary key."""
        ...

    def dump(self) -> list[Dumped]: ...

    def counts(self) -> dict[str, int]: ...

    def progress(self) -> dict[str, int]:
        """Each tracked name (a runner, or a worker's partition) and the position it reached."""
        ...

    def clear(self) -> None: ...

    # A rebuild is written aside and swapped in (decision 0061): readers keep the complete
    # views they had until the new ones are complete.

    def rebuilding(self) -> AbstractContextManager[None]:
        """Held while a rebuild runs: one at a time (two would write into one table aside);
        another one already running is AlreadyRunningError, at once."""
        ...

    def start_aside(self) -> None:
        """An empty table aside for a rebuild (one a rebuild cut off left is dropped)."""
        ...

    def apply_aside(
        self, events: Sequence[tuple[int, Any]], projection: Projection, stored: Stored
    ) -> None:
        """The events projected into the table aside, in one transaction, untracked."""
        ...

    def swap_aside(self, name: str, position: int) -> bool:
        """The table aside made the views, tracked by `name` at `position`, in one transaction;
        False (nothing changed) when the live views are tracked past `position`."""
        ...

    def drop_aside(self) -> None: ...


class RowReads(Protocol):
    """The two reads a batch makes of the rows already stored, inside its transaction, each
    row with its MAC; `exact`: whether a document comes back as the very bytes written."""

    exact: bool

    def select_one(self, view: str, key: str) -> tuple[str, bytes, bytes | None] | None: ...

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes, bytes | None]]: ...


class BatchRows:
    """The `Rows` a projection writes through during one batch: reads fall through to the
    database, writes stay in memory until `dirty()` is flushed with the tracking position."""

    def __init__(self, db: RowReads, codec: Codec, stored: Stored | None = None) -> None:
        self.db = db
        self.codec = codec
        self.stored = stored
        self.cache: dict[Key, tuple[str, Doc] | None] = {}
        self.changed: set[Key] = set()
        self.deleted_from: set[Key] = set()  # (view, subject) that lost a row
        self.opened: Opened = {}  # values opened from the rows read (`Codec.encode`)

    def touched(self) -> set[Key]:
        """(view, subject) whose rows this batch changed."""
        return {
            (view, row[0])
            for view, key in self.changed
            if (row := self.cache[(view, key)]) is not None
        } | self.deleted_from

    def get(self, view: str, key: str) -> Doc | None:
        if (view, key) not in self.cache:
            found = self.db.select_one(view, key)
            self.cache[(view, key)] = (
                (found[0], self._decode(view, key, found[0], found[1], found[2])) if found else None
            )
        row = self.cache[(view, key)]
        return row[1] if row else None

    def put(self, view: str, key: str, subject: UUID, doc: Doc) -> None:
        self.cache[(view, key)] = (ident(subject), doc)
        self.changed.add((view, key))

    def delete(self, view: str, key: str) -> None:
        self.get(view, key)  # remember whose row it was, for the runner's cache
        row = self.cache[(view, key)]
        if row is not None:
            self.deleted_from.add((view, row[0]))
        self.cache[(view, key)] = None
        self.changed.add((view, key))

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        s = str(subject)
        for key, data, mac in self.db.select_subject(view, s):
            if (view, key) not in self.cache:
                self.cache[(view, key)] = (s, self._decode(view, key, s, data, mac))
        return [
            row[1]
            for (v, _), row in sorted(self.cache.items())
            if v == view and row is not None and row[0] == s
        ]

    def _decode(self, view: str, key: str, subject: str, data: bytes, mac: bytes | None) -> Doc:
        """A stored row as this batch changes it, once its MAC is checked: an altered row
        stops the batch rather than being written back under a new MAC (`integrity.py`)."""
        checked = self.codec.verified(view, key, subject, data, mac, exact=self.db.exact)
        return self.codec.decode(view, key, subject, checked, self.opened, unread=True)

    def dirty(self) -> Iterator[tuple[str, str, str | None, bytes | None, bytes | None]]:
        """(view, key, subject, document, MAC) of each row changed; a deleted row's last
        three are None."""
        for view, key in sorted(self.changed):
            row = self.cache[(view, key)]
            if row is None:
                yield view, key, None, None, None
            else:
                data = self.codec.encode(view, key, row[0], row[1], self.opened)
                yield view, key, row[0], data, self.codec.mac(view, key, row[0], data)

    def project(self, runs: Sequence[Run], projection: Projection) -> None:
        """Every run's events through the projection, into this batch."""
        stored = self.stored or {}
        for events, _ in runs:
            for position, event in events:
                if (state := stored.get(position)) is not None:
                    self.codec.note_event(event, state, self.opened)
                projection.process(event, self, position)
