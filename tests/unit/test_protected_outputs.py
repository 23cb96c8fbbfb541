"""An audit output is never one of the embedded store's own files, even with --force
(infra/audit/outputs.py): the projection workers' stores among them, whose names change with
their projection's version (infra/views/kept.py): this version's, an earlier one's left in
place, the one of before stores were named by version, and the WAL and lock files of each;
and every file the app keeps for the store (the kept HTTP answers, the demo's and the relays'
locks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.audit.outputs import OutputPathError, check_output
from infra.cli.demo import lock_path
from infra.config import Settings
from infra.http.idempotency import kept_answers
from infra.kafka.relay_store import RelayLock
from infra.kafka.topics import EVENTS_TOPIC
from infra.store.filelock import running_alone
from infra.views.kept import KEPT


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'backcheck.sqlite'}", data_dir=tmp_path)


def workers_files(settings: Settings) -> list[Path]:
    found = []
    for kept in KEPT:
        for path in (
            kept.stream_path(settings),
            kept.stream_path(settings, kept.version - 1),
            settings.beside_store(kept.stream_file_stem),
        ):
            found += [path, Path(f"{path}-wal"), Path(f"{path}.writer-lock")]
    return found


def test_the_workers_stores_of_every_version_are_never_an_output(embedded: Settings) -> None:
    files = workers_files(embedded)
    assert "backcheck.stream-dashboard-v3.sqlite" in [path.name for path in files]
    for path in files:
        with pytest.raises(OutputPathError, match="never overwritten"):
            check_output(embedded, path, force=True)


def test_a_file_of_the_same_name_elsewhere_or_named_otherwise_may_be_an_output(
    embedded: Settings, tmp_path: Path
) -> None:
    current = KEPT[0].stream_path(embedded)
    elsewhere = tmp_path / "exports" / current.name
    elsewhere.parent.mkdir()  # an output's directory is never made for it
    for path in (elsewhere, Path(f"{current}.bundle"), tmp_path / "backcheck.bundle"):
        check_output(embedded, path, force=True)


def test_every_file_the_app_keeps_beside_the_store_is_never_an_output(
    embedded: Settings, tmp_path: Path
) -> None:
    """Named after the store's file, whatever follows: what the HTTP server, the demo and the
    relays keep beside it, made here by the code that makes them, and their WAL files."""
    kept = kept_answers("sqlite", embedded.sqlite_path, "", "")
    relay = RelayLock.acquire(embedded, EVENTS_TOPIC)
    assert relay is not None
    try:
        with running_alone(lock_path(embedded), "demo"):
            made = sorted(path for path in tmp_path.iterdir() if path.is_file())
    finally:
        relay.release()
        kept.close()
    assert {
        "backcheck.sqlite.http-answers",
        "backcheck.sqlite.http-answers-wal",
        "backcheck.sqlite.demo-lock",
        f"backcheck.sqlite.relay-{EVENTS_TOPIC}.lock",
    } <= {path.name for path in made}
    for path in made:
        with pytest.raises(OutputPathError, match="never overwritten"):
            check_output(embedded, path, force=True)
