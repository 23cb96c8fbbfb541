"""Processes that start together on a new PostgreSQL schema (docker compose starts the API, the
relay, the workers and the intake at once) all set it up without a deadlock or a duplicate
table, and share one master key."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.worker import worker_views
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres


def start_process(url: str, data_dir: str) -> tuple[int, str]:
    settings = Settings(database_url=url, data_dir=Path(data_dir))
    app = build_app(settings)
    views = worker_views(app, settings)
    rows = sum(views.counts().values())
    app.close()
    return rows, settings.master_key_path.read_text()


def test_processes_starting_together_set_up_one_schema(pg_schema: str, tmp_path: Path) -> None:
    url = f"{PG_URL}?schema={pg_schema}"
    with ProcessPoolExecutor(6) as pool:
        started = list(pool.map(start_process, [url] * 12, [str(tmp_path)] * 12))

    assert [rows for rows, _ in started] == [0] * 12
    assert len({key for _, key in started}) == 1
