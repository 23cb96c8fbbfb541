"""The dashboard's views (projections/dashboard.py), kept in process by a runner of their own.

Beside the read views, not among them: the read views are also kept by the projection workers,
one transaction per partition, and must equal the runner's row for row; the dashboard's few
aggregate rows would be changed by every partition at once (on PostgreSQL two workers would
overwrite each other's counts). So the dashboard has its own store (a SQLite file next to the
views, or tables of its own on PostgreSQL), its own tracking position and version, and is
rebuilt on its own; it has no sealer at all, so no personal value can be written into it.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore

from infra.store.pool import Datastore
from infra.views.codec import Codec
from infra.views.postgres import PostgresViewStore
from infra.views.runner import Decode, Log, ViewRunner
from infra.views.sqlite import SQLiteHead, SQLiteViewStore
from projections.dashboard import DASHBOARD_VIEWS, Dashboard

POSTGRES_TABLE = "backcheck_dashboard"


class _OwnLog:
    """The application's log as a second runner reads it: the recorder's note of what this
    process wrote is the read views' (they forget it once caught up), so not shared."""

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


def _codec() -> Codec:
    return Codec(None, plain_views=DASHBOARD_VIEWS, plain_prefixes=())


def sqlite_dashboard(
    log: Log, decode: Decode, name: str, path: str, events: tuple[str, str]
) -> ViewRunner:
    """The dashboard runner on a file at `path`, for the log of the SQLite event store
    `events` (its file name, its table)."""
    datastore = Datastore(path, lock_timeout=10)
    store = SQLiteViewStore(datastore, _codec())
    store.create_table()
    head = SQLiteHead(*events)

    def close() -> None:
        head.close()
        datastore.close()

    return ViewRunner(
        f"{name}.dashboard",
        _OwnLog(log),
        decode,
        store,
        projection=Dashboard(),
        on_close=close,
        head=head,
        topics=head.topics,
        log_views=DASHBOARD_VIEWS,
    )


def postgres_dashboard(
    log: Log, decode: Decode, name: str, datastore: PostgresDatastore
) -> ViewRunner:
    """The dashboard runner on tables of its own beside the events, on the store's pool."""
    store = PostgresViewStore(datastore, _codec(), table=POSTGRES_TABLE)
    store.create_table()
    return ViewRunner(
        f"{name}.dashboard",
        _OwnLog(log),
        decode,
        store,
        projection=Dashboard(),
        log_views=DASHBOARD_VIEWS,
    )
