"""The projection as the Kafka workers run it, fed relay-shaped messages without a broker:
the same views as the in-process runner, whatever the interleaving of partitions, and a
message delivered twice changes nothing."""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteDatastore
from rich.console import Console

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import run_demo
from infra.views import Codec, SQLiteViewStore, ViewRunner
from infra.worker import BadEventMessageError, Record, StreamProjection
from services.application import Backcheck
from tests.conftest import FakeClock

PARTITIONS = 3


@pytest.fixture
def demo_app(tmp_path: Path, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path),
        clock=clock,
    )
    run_demo(app, Console(file=io.StringIO()))
    yield app
    app.close()


def messages(app: Backcheck) -> list[Record]:
    """The log as the relay publishes it: keyed by candidate, so one candidate's events share
    a partition and keep their order; offsets count per partition."""
    offsets = [0] * PARTITIONS
    found = []
    for n in app.recorder.select_notifications(start=1, limit=10_000):
        candidate = app.mapper.transcoder.decode(n.state)["candidate_id"]
        partition = zlib.crc32(str(candidate).encode()) % PARTITIONS
        found.append(
            Record(
                partition=partition,
                offset=offsets[partition],
                value=n.state,
                headers={
                    "ce_id": f"{n.originator_id}:{n.originator_version}".encode(),
                    "ce_type": n.topic.encode(),
                    "ce_position": str(n.id).encode(),
                },
            )
        )
        offsets[partition] += 1
    return found


def stream_store(app: Backcheck, path: Path) -> SQLiteViewStore:
    assert app.mapper is not None
    store = SQLiteViewStore(SQLiteDatastore(str(path)), Codec(app.mapper.sealer))  # type: ignore[attr-defined]
    store.create_table()
    return store


def interleaved(records: list[Record], seed: int) -> list[list[Record]]:
    """Per-partition order kept, partitions interleaved at random, cut into random batches."""
    rng = random.Random(seed)
    queues = {p: [r for r in records if r.partition == p] for p in range(PARTITIONS)}
    merged: list[Record] = []
    while any(queues.values()):
        partition = rng.choice([p for p, q in queues.items() if q])
        merged.append(queues[partition].pop(0))
    batches, i = [], 0
    while i < len(merged):
        size = rng.randint(1, 9)
        batches.append(merged[i : i + size])
        i += size
    return batches


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_workers_projection_equals_the_in_process_views_row_for_row(
    demo_app: Backcheck, tmp_path: Path, seed: int
) -> None:
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    stream = StreamProjection(demo_app, stream_store(demo_app, tmp_path / f"s{seed}.sqlite"))

    applied = sum(stream.apply(batch) for batch in interleaved(records, seed))

    assert applied == len(records)
    assert stream.store.dump() == demo_app.views.store.dump()


def test_a_message_delivered_again_changes_nothing(demo_app: Backcheck, tmp_path: Path) -> None:
    records = messages(demo_app)
    stream = StreamProjection(demo_app, stream_store(demo_app, tmp_path / "s.sqlite"))
    stream.apply(records)
    before = stream.store.dump()
    restarted = StreamProjection(demo_app, stream.store)  # a new worker on the same views

    assert restarted.apply(records[len(records) // 2 :]) == 0
    assert restarted.apply(records) == 0
    assert stream.store.dump() == before


def test_a_message_without_the_relays_headers_is_refused_with_the_reason(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    stream = StreamProjection(demo_app, stream_store(demo_app, tmp_path / "s.sqlite"))
    bad = Record(partition=1, offset=7, value=b"{}", headers={"ce_id": b"x:1"})

    with pytest.raises(BadEventMessageError, match="partition 1 offset 7: no ce_position"):
        stream.apply([bad])
    assert stream.store.dump() == []
