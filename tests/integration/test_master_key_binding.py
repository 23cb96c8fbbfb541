"""A store is bound to its master key (issue 17, defect 1): the key's check value is recorded
when the store is made, and any other key is refused when the application opens, before
anything is written with it. A store made before the check is bound on its first open, by
the key that unwraps its data keys."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from domain.candidate import Candidate
from infra.bootstrap import build_app
from infra.config import ConfigError, Settings
from infra.privacy.keystore import (
    KEY_CHECK_TABLE,
    WrongMasterKeyError,
    key_check_value,
    load_master_key,
)
from services.application import Backcheck
from services.dto import RegisterCandidate
from tests.conftest import PG_URL


def sql(settings: Settings, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Runs one statement on the store's own database, as someone with a client would."""
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            return conn.execute(statement, params).fetchall()
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {settings.postgres_schema}")
        cur = conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def with_key(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"master_key_file": path})


def another_key(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "master.key"
    load_master_key(path, create=True)
    return path


def register(settings: Settings, name: str = "Zhou Min") -> UUID:
    app = build_app(settings)
    try:
        return app.register_candidate(RegisterCandidate(name=name, actor="hr:li.na")).candidate_id
    finally:
        app.close()


def contents(settings: Settings) -> tuple[int, list[tuple[Any, ...]]]:
    """The events' count and every key row as stored."""
    table = "stored_events" if settings.backend == "sqlite" else "backcheck_events"
    events = sql(settings, f"SELECT COUNT(*) FROM {table}")[0][0]
    keys = sql(settings, "SELECT subject, tier, wrapped FROM backcheck_keys ORDER BY subject, tier")
    return int(events), [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in keys
    ]


def forget_the_check_value(settings: Settings) -> None:
    """The store as a version before the check left it: data keys, no check value."""
    sql(settings, f"DELETE FROM {KEY_CHECK_TABLE}")


def name_of(app: Backcheck, candidate_id: UUID) -> str:
    """The candidate's name, opened with its data key."""
    return str(app.load(Candidate, candidate_id).identity[0].value)


def test_a_store_refuses_another_master_key_before_anything_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    register(settings)
    before = contents(settings)
    other = another_key(tmp_path)

    with pytest.raises(WrongMasterKeyError) as refused:
        register(with_key(settings, other), "Li Lei")

    assert f"the key in {other} is not this store's master key" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert contents(settings) == before


def test_a_new_store_is_bound_to_its_key_before_any_data_key_is_made(
    settings: Settings, tmp_path: Path
) -> None:
    build_app(settings).close()
    recorded = sql(settings, f"SELECT kcv FROM {KEY_CHECK_TABLE}")
    key = load_master_key(settings.master_key_path, create=False)
    other = another_key(tmp_path)

    with pytest.raises(WrongMasterKeyError):
        register(with_key(settings, other))

    assert [bytes(r[0]) for r in recorded] == [key_check_value(key)]
    assert contents(settings) == (0, [])


def test_a_store_made_before_the_check_is_bound_on_open_by_the_key_of_its_data_keys(
    settings: Settings, tmp_path: Path
) -> None:
    register(settings)
    forget_the_check_value(settings)

    register(settings, "Li Lei")  # its own key: unwraps the data keys, so it is bound

    key = load_master_key(settings.master_key_path, create=False)
    assert [bytes(r[0]) for r in sql(settings, f"SELECT kcv FROM {KEY_CHECK_TABLE}")] == [
        key_check_value(key)
    ]
    before = contents(settings)
    with pytest.raises(WrongMasterKeyError):
        register(with_key(settings, another_key(tmp_path)))
    assert contents(settings) == before


def test_a_store_made_before_the_check_refuses_a_key_that_unwraps_none_of_its_data_keys(
    settings: Settings, tmp_path: Path
) -> None:
    candidate_id = register(settings)
    forget_the_check_value(settings)
    before = contents(settings)

    # the candidate's name key and the views' MAC key (infra/views/integrity.py)
    with pytest.raises(WrongMasterKeyError, match="unwraps 0 of the store's 2 data keys"):
        register(with_key(settings, another_key(tmp_path)))

    assert contents(settings) == before
    assert sql(settings, f"SELECT kcv FROM {KEY_CHECK_TABLE}") == []
    app = build_app(settings)  # its own key still opens it, and reads what it sealed
    try:
        assert name_of(app, candidate_id) == "Zhou Min"
    finally:
        app.close()


def test_a_store_already_written_with_two_keys_is_bound_to_the_key_of_most_data_keys(
    settings: Settings, tmp_path: Path
) -> None:
    for name in ("Zhou Min", "Li Lei", "Wang Fang"):
        register(settings, name)
    other = another_key(tmp_path)
    foreign = aes_key_wrap(load_master_key(other, create=False), os.urandom(32))
    sql(
        settings,
        "INSERT INTO backcheck_keys (subject, tier, wrapped) VALUES (?, ?, ?)",
        str(uuid4()),
        "general",
        foreign,
    )
    forget_the_check_value(settings)

    # three names' keys and the views' MAC key, and the foreign one
    with pytest.raises(WrongMasterKeyError, match="unwraps 1 of the store's 5 data keys"):
        build_app(with_key(settings, other))
    build_app(settings).close()

    key = load_master_key(settings.master_key_path, create=False)
    assert [bytes(r[0]) for r in sql(settings, f"SELECT kcv FROM {KEY_CHECK_TABLE}")] == [
        key_check_value(key)
    ]


def test_a_bound_store_without_its_key_file_gets_no_new_key(settings: Settings) -> None:
    build_app(settings).close()  # bound, though no personal value is stored yet
    path = settings.master_key_path
    path.rename(path.with_name("kept-aside.key"))

    with pytest.raises(ConfigError, match=f"there is no master key at {path}"):
        build_app(settings)

    assert not path.exists()
