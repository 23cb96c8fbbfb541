"""The in-process runner: keeps the durable views (`store.py`) up to date from the
application's notification log, and answers reads from them through a cache of parsed rows."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, PersistenceError
from eventsourcing.utils import get_topic

from infra.views.codec import Parsed
from infra.views.kept import READ, Kept
from infra.views.store import Advance, Key, Progress, Projection, ViewStore
from projections.read_views import LOG_ONLY_EVENTS
from projections.rows import Doc

log = logging.getLogger(__name__)

Decode = Callable[[Notification], Any]  # a stored record → its domain event (the app's mapper)


class ViewsFailedError(Exception):
    """The kept views could not be brought up to date from the log: their store refused the
    batch (a views table that refuses a row, a damaged or read-only views file, a full disk,
    the store busy or gone), so what was asked of them cannot be answered (decision 0058).
    The store's own error is `error` (and the cause): the problem table tells a busy, full or
    unreachable store by it, and anything else as `views-failed`. The events stand; the views
    catch up at the next read once the fault is gone. Not a row altered outside backcheck,
    which is `ViewRowAlteredError` itself (a read stopped on it is recorded as failed)."""

    def __init__(self, views: str, error: Exception) -> None:
        super().__init__(
            f"the kept views {views!r} could not be brought up to date from the log "
            f"({_one_line(error)})"
        )
        self.views = views
        self.error = error

    def __reduce__(self) -> tuple[type[ViewsFailedError], tuple[str, Exception]]:
        return type(self), (self.views, self.error)  # pickled whole, as every error crosses


class Log(Protocol):
    """The application's log as the runner reads it: its head and its records, and the
    recorder's note of what this process wrote lately (infra/store/group_commit.py), by
    position, known before any writer wakes up."""

    written: dict[int, str]  # position → topic, until the views caught up or let it go

    def max_notification_id(self) -> int | None: ...

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...

    def forget_written(self, through: int) -> None: ...


class ViewRunner:
    """Keeps the views up to date from the application's notification log, in process, and
    answers from them through a cache of parsed rows.

    `catch_up()` is cheap when there is nothing new (one MAX query), and when many threads ask
    at once one of them applies everything pending in one transaction while the others wait
    for it: reads stay consistent with every write committed before they started.

    The cache holds rows as stored, personal values still sealed: each answer opens them
    afresh, so destroying a subject's keys takes effect at once, even before the erasure event
    reaches the views. Rows a batch changed are dropped from the cache when it commits; the
    runner is the views' only writer in its process."""

    max_cached = 50_000
    max_pending = 256

    def __init__(
        self,
        app_name: str,
        log: Log,
        decode: Decode,
        store: ViewStore,
        kept: Kept = READ,
        on_close: Callable[[], None] | None = None,
        head: Callable[[], int | None] | None = None,
        topics: Callable[[int, int], list[str]] | None = None,
    ) -> None:
        """`kept`: which of the kept views (`kept.py`) this runner keeps."""
        self.kept = kept
        self.log = log if kept.decisions else _OwnLog(log)
        self.decode = decode
        self.head = head or log.max_notification_id
        self.topics = topics or self._topics_in_log
        self.store = store
        self.on_close = on_close
        self.projection: Projection = kept.projection()
        # the views access records change: their cached rows are dropped when another
        # process applied nothing else
        self.log_views = kept.log_views
        # Tracked under the projection's version: rows of another version are rebuilt.
        self.name = kept.tracking_name(app_name, self.projection.version)
        if store.max_tracking_id(self.name) is None and store.counts():
            store.clear()
        self._lock = threading.Lock()
        self._position = store.max_tracking_id(self.name) or 0
        self._pending_lock = threading.Lock()
        # committed here, not yet applied: position → (event, its stored state)
        self._pending: dict[int, tuple[Any, bytes]] = {}
        self._log_only_through = 0
        self._log_only_topics = {get_topic(cls) for cls in LOG_ONLY_EVENTS}
        self._rows: dict[Key, Parsed] = {}
        self._lists: dict[Key, list[Parsed]] = {}

    @property
    def position(self) -> int:
        return self._position

    def observe(self, committed: list[tuple[int, Any, bytes]]) -> None:
        with self._pending_lock:
            for position, event, stored in committed:
                if position > self._position:
                    self._pending[position] = (event, stored)
            backlog = len(self._pending)
        if backlog >= self.max_pending:
            try:
                self.catch_up()
            except Exception as error:  # the writes are committed: see `_left_behind`
                self._left_behind(error, "after a write")

    def catch_up_for_decisions(self) -> int:
        head = self.head() or 0
        if head <= self._position:
            return self._position
        written = self.log.written
        with self._pending_lock:
            # How far the log holds nothing but this process's own access records. The
            # recorder notes the topic of each write before its writer wakes up, so this does
            # not depend on the writers having reported back yet.
            through = max(self._log_only_through, self._position)
            while written.get(through + 1) in self._log_only_topics:
                through += 1
            self._log_only_through = through
        if head <= through:
            return self._position
        if self._log_only(through, head):  # another process's access records: ask the log
            with self._pending_lock:
                self._log_only_through = max(self._log_only_through, head)
            return self._position
        return self.catch_up()

    def _log_only(self, after: int, through: int) -> bool:
        """Whether the log holds nothing but access records (of any process) after `after` up
        to `through`. Several processes on one store each write their own readers' access
        records; none of them should make the others catch up or drop their caches. A long
        stretch is not looked through: it is simply caught up."""
        if through - after > self.max_pending:
            return False
        return all(topic in self._log_only_topics for topic in self.topics(after, through))

    def _topics_in_log(self, after: int, through: int) -> list[str]:
        """The topics of the log's records after `after` up to `through`."""
        notes = self.log.select_notifications(start=after + 1, limit=through - after, stop=through)
        return [n.topic for n in notes]

    def catch_up(self, batch: int = 500, progress: Progress | None = None) -> int:
        head = self.head() or 0
        if head <= self._position:
            return self._position
        with self._lock:
            while True:
                # another process may have applied some of it (meanwhile): not again
                self._adopt(self._stored())
                if self._position >= head:
                    break
                events, states = self._next_batch(head, batch)
                if not events:
                    break
                last = events[-1][0]
                advance = Advance(self.name, last, after=self._position)
                try:
                    touched = self.store.apply(events, advance, self.projection, states)
                except IntegrityError as error:
                    # Another runner on the same views (another process) applied some or all
                    # of this run meanwhile: take up from where it got to
                    stored = self._stored()
                    if stored <= self._position:  # no: the views' store refused the rows
                        raise ViewsFailedError(self.kept.name, error) from error
                    self._adopt(stored)
                    continue
                except PersistenceError as error:
                    raise ViewsFailedError(self.kept.name, error) from error
                self._forget(touched)
                self._advance(last)
                if progress is not None:
                    progress(self._position, head)
        return self._position

    def _stored(self) -> int:
        """Where the views' store says they stand (its error: `ViewsFailedError`)."""
        try:
            return self.store.max_tracking_id(self.name) or 0
        except PersistenceError as error:
            raise ViewsFailedError(self.kept.name, error) from error

    def _adopt(self, stored: int) -> None:
        """Views advanced by another runner: what this one cached may be stale (only the
        access log's rows, when all it applied were access records)."""
        if stored <= self._position:
            return
        if self._log_only(self._position, stored):
            for cache in (self._rows, self._lists):
                for key in [k for k in cache if k[0] in self.log_views]:
                    cache.pop(key, None)
        else:
            self._rows.clear()
            self._lists.clear()
        self._advance(stored)

    def _advance(self, through: int) -> None:
        """The views hold everything up to `through`: nothing held for them is needed."""
        with self._pending_lock:
            self._position = through
            for position in [p for p in self._pending if p <= through]:
                del self._pending[position]
        self.log.forget_written(through)

    def _next_batch(self, head: int, batch: int) -> tuple[list[tuple[int, Any]], dict[int, bytes]]:
        """The next events after the views' position, with their stored states: from memory
        when this process wrote them all, else read back from the log (decoding only those
        not in memory)."""
        stop = min(head, self._position + batch)
        wanted = range(self._position + 1, stop + 1)
        with self._pending_lock:
            known = {p: self._pending.get(p) for p in wanted}
        held = {p: found for p, found in known.items() if found is not None}
        if len(held) == len(known):  # every one written by this process
            return [(p, found[0]) for p, found in held.items()], {
                p: found[1] for p, found in held.items()
            }
        notes = self.log.select_notifications(start=self._position + 1, limit=batch, stop=head)
        events = []
        for n in notes:
            found = known.get(n.id)
            events.append((n.id, found[0] if found is not None else self.decode(n)))
        return events, {n.id: n.state for n in notes}

    def rebuild(self, batch: int = 500, progress: Progress | None = None) -> int:
        """The views made again from the start of the log, aside (decision 0061): readers,
        here and in other processes, keep the complete views they had, kept current by their
        runners, until the new ones hold every event those hold; then one transaction puts
        the new ones in their place. Cut off, it leaves the views as they were."""
        with self._lock, self.store.rebuilding():
            self.store.start_aside()
            try:
                position = 0
                while True:
                    position = self._fill_aside(position, batch, progress)
                    if self.store.swap_aside(self.name, position):
                        break
            except BaseException:
                with contextlib.suppress(Exception):  # the error itself is what to say
                    self.store.drop_aside()
                raise
            self._log_only_through = 0
            self._rows.clear()
            self._lists.clear()
            self._advance(position)
        return self.catch_up(batch)

    def _fill_aside(self, position: int, batch: int, progress: Progress | None) -> int:
        """The table aside brought from `position` up to the log's head: where it stands."""
        head = self.head() or 0
        while position < head:
            notes = self.log.select_notifications(start=position + 1, limit=batch, stop=head)
            if not notes:
                break
            events = [(n.id, self.decode(n)) for n in notes]
            self.store.apply_aside(events, self.projection, {n.id: n.state for n in notes})
            position = notes[-1].id
            if progress is not None:
                progress(position, head)
        return position

    def _forget(self, touched: set[Key]) -> None:
        if len(self._rows) + len(self._lists) > self.max_cached:
            self._rows.clear()
            self._lists.clear()
        for view, subject in touched:
            self._lists.pop((view, subject), None)
        stale = {view for view, _ in touched}
        for cached in [k for k, row in self._rows.items() if k[0] in stale]:
            row = self._rows.get(cached)
            if row is None or (cached[0], row.subject) in touched:
                self._rows.pop(cached, None)

    def get(self, view: str, key: str, opening: frozenset[str] | None = None) -> Doc | None:
        found = self._rows.get((view, key))
        if found is None:
            with self._lock:  # not while a batch is being applied: it could be stale at once
                found = self.store.get_parsed(view, key)
                if found is not None:
                    self._rows[(view, key)] = found
        return found.open(view, self.store.codec, opening) if found else None

    def of_subject(
        self, view: str, subject: UUID | str, opening: frozenset[str] | None = None
    ) -> list[Doc]:
        """Rows are shared with the cache: the answer is read-only."""
        s = subject if isinstance(subject, str) else str(subject)
        found = self._lists.get((view, s))
        if found is None:
            with self._lock:
                found = self.store.of_subject_parsed(view, s)
                self._lists[(view, s)] = found
        codec = self.store.codec
        return [row.open(view, codec, opening) for row in found]

    def page(
        self, view: str, after: str | None, limit: int, opening: frozenset[str] | None = None
    ) -> list[Doc]:
        """Read from the store each time, never cached: a page is one indexed range read, and
        keeping pages would mean dropping them on every change to any row of their view."""
        codec = self.store.codec
        return [
            row.open(view, codec, opening) for row in self.store.page_parsed(view, after, limit)
        ]

    def close(self) -> None:
        """Applies what this process committed since the last batch, then lets go; but not
        while the interpreter shuts down (an application never closed, collected at exit):
        its modules are being torn down then, and the next open applies those events."""
        try:
            if self._pending and not sys.is_finalizing():
                self.catch_up()
        except Exception as error:  # as in `observe`: the writes are committed
            self._left_behind(error, "before closing")
        finally:
            if self.on_close is not None:
                self.on_close()

    def _left_behind(self, error: Exception, when: str) -> None:
        """The views could not be brought up to date over writes already committed (decision
        0055): a view row altered outside backcheck, a views file or table that refuses the
        write (a full disk, a read-only or damaged file), the store busy or gone past its
        retries, a projection's bug. The writes stand, and so does the command that made them:
        it must not answer as failed, or its caller would send it again. So the error is said
        here, in one line, once, and not raised. What was held for the views is let go: they
        read it back from the log, as after a crash, and the next read (which brings them up
        to date first) meets the error again if it lasts, and fails closed with it; the next
        writes try again only once `max_pending` more are held (not one failed batch per
        command). So what is held for the views, and the recorder's note of it, stays below
        one batch however long the fault lasts."""
        if isinstance(error, ViewsFailedError):
            error = error.error  # the store's own, as the line has always named it
        with self._pending_lock:
            let_go = max(self._pending, default=0)
            self._pending.clear()
        # and the recorder's note of those writes (their topics), kept only until the views
        # are past them: read back from the log too, or it grows by a write each while the
        # fault lasts and no read comes
        self.log.forget_written(let_go)
        log.error(
            "the kept views %r were not brought up to date %s (%s); the writes stand, and the "
            "views catch up at the next read",
            self.kept.name,
            when,
            _one_line(error),
        )


MAX_ERROR_SHOWN = 500  # characters of an error's text in the line that says it


def _one_line(error: Exception) -> str:
    """`Type: text` of an error on one line (a driver's error may span several: its detail,
    a hint), cut at MAX_ERROR_SHOWN characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_ERROR_SHOWN else f"{text[:MAX_ERROR_SHOWN]}..."


class _OwnLog:
    """The application's log as the runner of views no read decision rests on reads it: the
    recorder's note of what this process wrote is the read views' (they forget it once caught
    up), so not shared."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.written: dict[int, str] = {}

    def max_notification_id(self) -> int | None:
        return self.log.max_notification_id()

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        return self.log.select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )

    def forget_written(self, through: int) -> None:
        return None
