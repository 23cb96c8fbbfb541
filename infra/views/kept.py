"""The views the application keeps: one entry in `KEPT` for each projection with a store of
its own. Every entry is kept the same way, so a new one needs nothing else:

    in process  a runner on the store's log (`runner.py`), beside the store: a SQLite file
                next to the event store, or a table of its own on PostgreSQL
    by workers  the projection workers' store of it (`infra/kafka/worker.py`), tracked per
                partition of the events topic, named with the projection's version
                (`stream_table`, `stream_path`)
    operators   `views status` shows each one's position and lag, `views rebuild` rebuilds
                each (or those named)

    views      the read views the query service answers from (projections/read_views.py):
               personal values sealed with the subject's keys
    dashboard  the dashboard's counts (projections/dashboard.py): no sealer at all, so no
               personal value can be written into it; its aggregate rows are changed by
               every candidate's events, so the workers apply them one writer at a time
               (`Projection.shared_rows`)

Each has its own tracking name and version, so one is rebuilt without the other. A version
names what the rows hold, so it names where they are kept: the runner's tracking name, the
workers' store. Workers of a new version start from an empty store, filled from each partition
read again from its start, never applying their events to rows another version made; the
stores of earlier versions are left where they are, never written again (README: dropping
them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from eventsourcing.persistence import InterfaceError, OperationalError

from infra.config import Settings
from infra.privacy.sealing import Sealer
from infra.views.codec import Codec
from infra.views.integrity import ROWS_SCOPE, ROWS_SUBJECT, RowSeal
from infra.views.store import Projection
from projections.access_log import LOG_VIEW
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW, DASHBOARD_VIEWS, Dashboard
from projections.read_views import PLAIN_PREFIXES, PLAIN_VIEWS, VIEWS, ReadViews


@dataclass(frozen=True)
class Kept:
    """One projection kept in a store of its own."""

    name: str  # as `views status` and `views rebuild` name it
    projection: Callable[[], Projection]
    listed: tuple[str, ...]  # the views `views status` counts rows of by name
    log_views: frozenset[str]  # the views access records change (runner.py's cache)
    sealed: bool  # its rows may hold personal values, sealed; else none can be written
    plain_views: frozenset[str]  # views declared to hold no personal value
    plain_prefixes: tuple[str, ...]  # ... and those named per value (a day), by prefix
    tracking: str  # the runner tracks as "<app><tracking>.views.v<version>"
    path: Callable[[Settings], Path]  # the runner's SQLite file
    table: str  # the runner's PostgreSQL table
    stream_table_stem: str  # the workers' PostgreSQL table, before its version: `stream_table`
    stream_file_stem: str  # the workers' SQLite file, before its version: `stream_path`
    # Read decisions rest on it: its runner has the recorder's note of what this process wrote
    # (the runner of the others reads the log alone: the note is forgotten once caught up).
    decisions: bool = False

    def codec(self, sealer: Sealer | None) -> Codec:
        """Its rows' codec: sealing with `sealer` if it is `sealed`, and every row written
        with a MAC under the key store's views key whatever it holds (`integrity.py`)."""
        rows = None if sealer is None else RowSeal(partial(views_key, sealer))
        return Codec(sealer if self.sealed else None, self.plain_views, self.plain_prefixes, rows)

    def tracking_name(self, app_name: str, version: int) -> str:
        return f"{app_name}{self.tracking}.views.v{version}"

    @property
    def version(self) -> int:
        """The version of the projection this code keeps it by."""
        return self.projection().version

    def stream_table(self, version: int | None = None) -> str:
        """The workers' PostgreSQL table of the rows `version` (this code's, by default) made,
        e.g. `backcheck_stream_dashboard_v3`; its tracking is in `<table>_tracking`."""
        return f"{self.stream_table_stem}_v{self.version if version is None else version}"

    def stream_path(self, settings: Settings, version: int | None = None) -> Path:
        """The workers' SQLite file of the rows `version` (this code's, by default) made,
        beside the embedded store, e.g. `<store>.stream-dashboard-v3.sqlite`."""
        version = self.version if version is None else version
        return settings.beside_store(f"{self.stream_file_stem}-v{version}")


KEY_POOL_TRIES = 6  # the key store's PostgreSQL pool holds at most 4 connections


def views_key(sealer: Sealer) -> bytes:
    """The key view rows' MACs are made with: a data key of the key store's own (made on
    first use, wrapped by the master key like the subjects')."""
    lost: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
    # psycopg's own, where a store with a server loaded it (importing it for an SQLite store
    # cost every process that opens its views 150 ms)
    if (psycopg := sys.modules.get("psycopg")) is not None:
        lost = (*lost, psycopg.OperationalError)
    for attempt in range(KEY_POOL_TRIES):
        try:
            key = sealer.keys.data_key(ROWS_SUBJECT, ROWS_SCOPE, create=True)
            break
        except lost:
            # fetched once a process, perhaps first after an outage: a pooled connection the
            # server dropped meanwhile fails once and is replaced (as many as the pool holds)
            if attempt == KEY_POOL_TRIES - 1:
                raise
    if key is None:  # never: made on demand, and no erasure destroys it
        raise RuntimeError("no key for the views' MACs")
    return key


READ = Kept(
    name="views",
    projection=ReadViews,
    listed=VIEWS,
    log_views=frozenset({LOG_VIEW}),
    sealed=True,
    plain_views=PLAIN_VIEWS,
    plain_prefixes=PLAIN_PREFIXES,
    tracking="",
    path=lambda settings: settings.views_path,
    table="backcheck_views",
    stream_table_stem="backcheck_stream_views",
    stream_file_stem="stream-views",
    decisions=True,
)
DASHBOARD = Kept(
    name="dashboard",
    projection=Dashboard,
    listed=(DASHBOARD_VIEW, CASE_VIEW),
    log_views=DASHBOARD_VIEWS,  # every access record moves a count
    sealed=False,
    plain_views=DASHBOARD_VIEWS,
    plain_prefixes=(),
    tracking=".dashboard",
    path=lambda settings: settings.dashboard_path,
    table="backcheck_dashboard",
    stream_table_stem="backcheck_stream_dashboard",
    stream_file_stem="stream-dashboard",
)
KEPT: tuple[Kept, ...] = (READ, DASHBOARD)


def kept_named(names: list[str]) -> list[Kept]:
    """The entries of `KEPT` named (all of them for none), in `KEPT`'s order; an unknown name
    is a ValueError naming the known ones."""
    known = {kept.name: kept for kept in KEPT}
    if unknown := [name for name in names if name not in known]:
        raise ValueError(
            f"{', '.join(unknown)}: no such views; the kept views are {', '.join(known)}"
        )
    return [kept for kept in KEPT if not names or kept.name in names]
