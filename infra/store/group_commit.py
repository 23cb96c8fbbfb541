"""Group commit: concurrent writers share one transaction, and one flush to disk.

A durable commit costs a flush (fsync on SQLite, a WAL flush on PostgreSQL). When many
requests each save one small event — every read of personal data records its access event
before answering — the flush, not the work, sets the pace. Here the first writer to arrive
becomes the leader: it takes every write queued so far, inserts them in one transaction and
wakes the others with their own notification ids (services/batching.py). Writers that arrive
meanwhile queue up for the next round. Alone, a writer commits at once, as before.

A round that fails (one writer's optimistic-concurrency conflict, say) is retried writer by
writer, so only the writer at fault sees the error and the others still commit. Everything
else — the chain, the triggers, notification ids in commit order — is the recorder's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.batching import Batcher, Slot

Write = Slot[Sequence[StoredEvent], Sequence[int] | None]


class GroupCommit:
    """Mixin for an application recorder; put it before the recorder class in the bases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group: Batcher[Sequence[StoredEvent], Sequence[int] | None] = Batcher(self._write)
        # Topics of what this process wrote, by position, until the views have caught up
        # (see ViewRunner.catch_up_for_decisions), or let them go on failing to (to read them
        # back from the log: `_left_behind`): known before any writer wakes up.
        self.written: dict[int, str] = {}

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if any(v is not None for v in kwargs.values()):
            # A tracked write (a process recorder's) keeps its own transaction. The
            # application passes `tracking=None` on every save: that is an ordinary write.
            with self.exclusive():
                return super().insert_events(stored_events, **kwargs)  # type: ignore[misc,no-any-return]
        return self.group.submit(stored_events)

    def exclusive(self) -> AbstractContextManager[Any]:
        """Held around each write transaction; a recorder whose database wants writers
        kept apart across processes says how (infra/store/filelock.py)."""
        return nullcontext()

    def _write(self, group: list[Write]) -> None:
        with self.exclusive():
            self._write_group(group)

    def _write_group(self, group: list[Write]) -> None:
        try:
            ids = super().insert_events([e for w in group for e in w.item])  # type: ignore[misc]
        except BaseException as error:
            if len(group) == 1:
                group[0].fail(error)
                return
            for w in group:  # find the writer at fault; the rest still commit
                try:
                    got = super().insert_events(w.item)  # type: ignore[misc]
                except BaseException as e:
                    w.fail(e)
                    continue
                self._note(got, w.item)
                w.succeed(got)
            return
        self._note(ids, [e for w in group for e in w.item])
        start = 0
        for w in group:
            n = len(w.item)
            w.succeed(list(ids[start : start + n]) if ids is not None else None)
            start += n

    def _note(self, ids: Sequence[int] | None, events: Sequence[StoredEvent]) -> None:
        if ids is not None:
            self.written.update(zip(ids, (e.topic for e in events), strict=True))

    def forget_written(self, through: int) -> None:
        # a copy of the keys first, in one step: another writer may note its write meanwhile
        # (iterating the map itself would then raise, out of a write already committed)
        for position in [p for p in list(self.written) if p <= through]:
            self.written.pop(position, None)
