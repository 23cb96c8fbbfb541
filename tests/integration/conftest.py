"""Fixtures the integration tests of one feature share across their modules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.config import Settings
from infra.store.migration_stores import target_settings
from tests.conftest import PG_URL


@pytest.fixture
def target(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A new store on the same backend as `settings`, with a data directory of its own: where
    `store migrate` copies to (test_store_migrate*.py)."""
    new_dir = tmp_path / "new"
    if settings.backend == "sqlite":
        yield target_settings(settings, f"sqlite:///{new_dir / 'store.sqlite'}", None)
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield target_settings(settings, f"{PG_URL}?schema={schema}", new_dir)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
