"""A large store built quickly for bundle-size tests and the bench: `n` events written through
the real recorder (chain and tree, in the events' transaction) in batches, `subject`'s `mine`
events spread evenly among them. Returns the positions of the subject's events."""

from __future__ import annotations

import uuid
from pathlib import Path

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from infra.store.recorder import ChainedSQLiteApplicationRecorder

STATE = b'{"candidate_id":"%s","name":"sealed:' + b"x" * 120 + b'"}'
BATCH = 10_000


def spread_store(path: Path, n: int, subject: uuid.UUID, mine: int = 40) -> list[int]:
    recorder = ChainedSQLiteApplicationRecorder(SQLiteDatastore(str(path)), "stored_events")
    recorder.create_table()
    every = n // mine
    version = 0
    positions: list[int] = []
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, n)):
            if i % every == every // 2 and version < mine:
                version += 1
                state = STATE % str(subject).encode()
                batch.append(StoredEvent(subject, version, "Candidate.Noted", state))
                positions.append(i + 1)
            else:
                other = uuid.uuid4()
                batch.append(StoredEvent(other, 1, "Other.Event", STATE % str(other).encode()))
        recorder.insert_events(batch)
    return positions
