"""The SQLite recorder's read of one aggregate's events (one statement, outside a transaction:
infra/store/recorder.py) answers exactly as the library's own read does, for every way the
library asks it (a range of versions, newest first, a limit)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from infra.store.recorder import ChainedSQLiteApplicationRecorder


def test_reading_an_aggregates_events_answers_as_the_library_does(tmp_path: Path) -> None:
    recorder = ChainedSQLiteApplicationRecorder(SQLiteDatastore(str(tmp_path / "store.sqlite")))
    recorder.create_table()
    mine, other = uuid4(), uuid4()
    recorder.insert_events(
        [StoredEvent(mine, v, "domain.x:X.Happened", f'{{"v":{v}}}'.encode()) for v in (1, 2, 3)]
        + [StoredEvent(other, 1, "domain.x:X.Happened", b"{}")]
    )
    asks: list[dict[str, int | bool | None]] = [
        {},
        {"desc": True, "limit": 1},
        {"gt": 1},
        {"lte": 2},
        {"gt": 1, "lte": 2, "desc": True},
        {"limit": 2},
        {"gt": 3},
    ]

    for ask in asks:
        got = recorder.select_events(mine, **ask)  # type: ignore[arg-type]
        library = SQLiteApplicationRecorder.select_events(recorder, mine, **ask)  # type: ignore[arg-type]
        assert got == library, ask
    assert [e.originator_version for e in recorder.select_events(mine, desc=True)] == [3, 2, 1]
    assert recorder.select_events(mine, gt=3) == []
    assert recorder.select_events(uuid4()) == []
    assert recorder.select_events(mine.hex, limit=1)[0].state == b'{"v":1}'
