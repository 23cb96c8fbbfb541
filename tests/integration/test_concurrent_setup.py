"""Processes that start together on a new store (docker compose starts the API, the relay, the
workers and the intake at once) all set it up without a deadlock or a duplicate table, and
share one master key: a PostgreSQL schema, an embedded (SQLite) store with the files beside it,
and the workers' SQLite views file."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.daemon import projection_worker
from infra.kafka.worker import WorkerOptions, worker_views
from infra.store.pool import Datastore
from infra.views.codec import Codec
from infra.views.sqlite import SQLiteViewStore
from tests.conftest import PG_URL


def start_process(url: str, data_dir: str) -> tuple[int, str]:
    settings = Settings(database_url=url, data_dir=Path(data_dir))
    app = build_app(settings)
    views = worker_views(app, settings)
    rows = sum(views.counts().values())
    app.close()
    return rows, settings.master_key_path.read_text()


def start_worker(url: str, data_dir: str) -> tuple[int, str]:
    """What `backcheck worker` opens before it joins its group (the store, its keys, the read
    views, the workers' own views, the relay's state), closed again."""
    settings = Settings(database_url=url, data_dir=Path(data_dir))
    with (
        closing(build_app(settings)) as app,
        projection_worker(app, settings, WorkerOptions()) as worker,
    ):
        rows = sum(sum(t.store.counts().values()) for t in worker.projection.targets)
    return rows, settings.master_key_path.read_text()


def test_workers_starting_together_on_a_new_sqlite_store_all_open_it(tmp_path: Path) -> None:
    """Six worker processes let go together on each of twenty new stores: each makes the
    store's tables, puts each new file in WAL mode, and binds the store to its master key,
    all at once; none is refused ("database is locked", a worker stopped with exit 75)."""
    with ProcessPoolExecutor(6) as pool:
        list(pool.map(int, range(6)))  # the processes up first, so that their starts meet
        for n in range(20):
            folder = tmp_path / f"store-{n}"
            url = f"sqlite:///{folder / 'store.sqlite'}"

            started = list(pool.map(start_worker, [url] * 6, [str(folder)] * 6))

            assert [rows for rows, _ in started] == [0] * 6
            assert len({key for _, key in started}) == 1


@pytest.mark.postgres
def test_processes_starting_together_set_up_one_schema(pg_schema: str, tmp_path: Path) -> None:
    url = f"{PG_URL}?schema={pg_schema}"
    with ProcessPoolExecutor(6) as pool:
        started = list(pool.map(start_process, [url] * 12, [str(tmp_path)] * 12))

    assert [rows for rows, _ in started] == [0] * 12
    assert len({key for _, key in started}) == 1


class _Slow(SQLiteViewStore):
    """Creates its tables only once the other store has come this far too, or half a second
    has passed: the window in which two processes starting together both find no table."""

    meet = threading.Barrier(2)

    def _create_table(self, c: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.meet.wait(timeout=0.5)
        super()._create_table(c)


@pytest.mark.parametrize("run", range(3))
def test_two_workers_starting_together_set_up_one_sqlite_views_file(
    tmp_path: Path, run: int
) -> None:
    _Slow.meet = threading.Barrier(2)
    path = str(tmp_path / f"views-{run}.sqlite")
    failures: list[BaseException] = []

    def start() -> None:
        store = _Slow(Datastore(path, lock_timeout=10), Codec(None))
        try:
            store.create_table()
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert failures == []
    assert SQLiteViewStore(Datastore(path), Codec(None)).counts() == {}
