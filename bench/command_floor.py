"""The least a sealed, chained command can cost, against the raw library, in one run: how far
below the raw `eventsourcing` rate any implementation of issue 21's write must fall on this
machine, whatever it is written like (the target: >= 0.8x raw, bench/commands.py).

    .venv/bin/python bench/command_floor.py [--commands 2000] [--runs 3]

Four sides register a candidate (one event, a name and an e-mail address), one writer each,
each on an SQLite file of its own in one folder, taking turns round by round:
- `raw`: the stock library saving the event in clear (bench/commands.py's baseline);
- `sealed`: the library's own recorder and nothing of ours, doing only what sealing needs: a
  new data key for the subject (32 random bytes), wrapped under a master key (AES-GCM), its
  row stored in the events' own transaction, the two values sealed under it (AES-GCM, each
  bound to its place);
- `sealed+chained`: the same, and the event's link of the hash chain (SHA-256 over the last
  link, kept in memory, and the stored record) stored in the same transaction;
- `ours`: `register_candidate` as a service calls it (bench/commands.py's `Ours`).
Left out of the floors, though ours does them: the command's validation, the exists check,
the subject index, the Merkle tree, the kept views and their MACs, the policies. So each floor
is a lower bound of the cost, not an implementation: nothing real can be faster than it.

Printed: each side's events per second (median of the runs, min, max), CPU a command (the
writing thread's, system time included), and the ratio to raw. With one writer every command
waits for its own commit, as the raw library's does; with more, ours shares commits
(infra/store/group_commit.py) and the floor no longer binds it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from commands import EMAIL, NAME, Ours, Person, Raw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory
from machine import speed_line

from infra.config import Settings

_made = threading.local()  # the key row a write carries into its transaction


class FloorRecorder(SQLiteApplicationRecorder):
    """The library's recorder, storing a new key's row and, when `chained`, the events' links
    in the events' own transaction."""

    chained = False

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS floor_keys (subject TEXT, scope TEXT, wrapped BLOB, "
            "PRIMARY KEY (subject, scope)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS floor_chain (position INTEGER PRIMARY KEY, link BLOB)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        key_row = getattr(_made, "row", None)
        if key_row is not None:
            c.execute("INSERT INTO floor_keys VALUES (?, ?, ?)", key_row)
            _made.row = None
        positions = super()._insert_events(c, stored_events, **kwargs)
        if self.chained and positions:
            link = getattr(self, "_link", b"")
            for position, stored in zip(positions, stored_events, strict=True):
                link = hashlib.sha256(link + stored.state).digest()
                c.execute("INSERT INTO floor_chain VALUES (?, ?)", (position, link))
            self._link = link  # one writer: its last link is the chain's
        return positions


class ChainedRecorder(FloorRecorder):
    chained = True


class SealedFactory(SQLiteFactory):
    application_recorder_class = FloorRecorder


class ChainedFactory(SQLiteFactory):
    application_recorder_class = ChainedRecorder


class Floor:
    """The event sealed under a new data key of the subject's, stored with it."""

    def __init__(self, path: Path, factory: type[SQLiteFactory]) -> None:
        topic = f"{factory.__module__}:{factory.__qualname__}"
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        self.app = Application[uuid.UUID](env=env | {"FACTORY_TOPIC": topic})
        self.master = AESGCM(os.urandom(32))

    def register(self) -> None:
        subject = uuid.uuid4()
        key, nonce = os.urandom(32), os.urandom(12)
        wrapped = nonce + self.master.encrypt(nonce, key, subject.bytes)
        _made.row = (subject.hex, "general", wrapped)
        sealing = AESGCM(key)

        def seal(value: str, place: bytes) -> str:
            iv = os.urandom(12)
            return (iv + sealing.encrypt(iv, value.encode(), subject.bytes + place)).hex()

        self.app.save(Person(seal(NAME, b"name"), seal(EMAIL, b"email")))

    def close(self) -> None:
        self.app.close()


def timed(register: Callable[[], object], n: int) -> tuple[float, float]:
    """Events a second and CPU microseconds a command (this thread's, system time too)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(n):
        register()
    return n / (time.perf_counter() - wall), (time.thread_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000, help="of each side, each run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"the floor of a sealed, chained command (SQLite, one writer, {args.commands} a run)")
    print(f"  machine: {speed_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="command-floor-") as tmp:  # removed afterwards
        work = Path(tmp)
        settings = Settings(database_url=f"sqlite:///{work / 'store.sqlite'}", data_dir=work)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(work / "raw.sqlite"),
        }
        sides: dict[str, Any] = {
            "raw": Raw(env),
            "sealed": Floor(work / "sealed.sqlite", SealedFactory),
            "sealed+chained": Floor(work / "chained.sqlite", ChainedFactory),
            "ours": Ours(settings),
        }
        got: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        try:
            for side in sides.values():
                side.register()  # warmed: tables made, keys and modules loaded
            for run in range(args.runs):
                names = list(sides) if run % 2 == 0 else list(reversed(sides))
                for name in names:
                    got[name].append(timed(sides[name].register, args.commands))
        finally:
            for side in sides.values():
                side.close()
        raw = statistics.median(rate for rate, _ in got["raw"])
        for name, runs in got.items():
            rates = [rate for rate, _ in runs]
            rate, cpu = statistics.median(rates), statistics.median(c for _, c in runs)
            print(
                f"  {name:<15} {rate:6.0f} events/s (min {min(rates):.0f}, max {max(rates):.0f}); "
                f"CPU {cpu:4.0f} us a command; ratio to raw {rate / raw:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
