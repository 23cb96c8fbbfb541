"""Hash-chain benchmark: hashing core, write overhead, and `audit verify` over a real store.

    .venv/bin/python bench/chain_verify.py [--events 1000000] [--batch 1000]

Prints, in one run and on the same bytes:
  * the hashing core (infra.chain.link) in events/s, next to plain SHA-256 of the same bytes;
  * writes through our chained SQLite recorder next to the library's plain SQLite recorder
    (the raw `eventsourcing` baseline), as events/s and their ratio;
  * `audit verify` (infra.audit.verify on the SQLite file) over every stored event, in seconds.
Targets (issue #3): hashing core >= 1M events/s; verify of 1M stored events < 10 s on SQLite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from infra.audit import SQLiteSource, verify
from infra.chain import link
from infra.config import Settings

TOPIC = "domain.investigation:Investigation.FindingRecorded"


def make_events(n: int, batch: int) -> list[list[StoredEvent]]:
    """~250-byte states, 10 events per aggregate, as in the design's baseline."""
    batches, current = [], []
    oid, version = uuid4(), 0
    for _ in range(n):
        version += 1
        if version > 10:
            oid, version = uuid4(), 1
        current.append(StoredEvent(oid, version, TOPIC, os.urandom(125).hex().encode()))
        if len(current) == batch:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


def write(path: Path, batches: list[list[StoredEvent]], chained: bool) -> float:
    env = Settings(database_url=f"sqlite:///{path}").store_env()
    if not chained:
        env.pop("APPLICATION_RECORDER_TOPIC")
    factory = InfrastructureFactory.construct(Environment("backcheck", env))
    recorder = factory.application_recorder()
    started = time.perf_counter()
    for b in batches:
        recorder.insert_events(b)
    elapsed = time.perf_counter() - started
    factory.close()
    return elapsed


def hashing_core(batches: list[list[StoredEvent]]) -> tuple[float, float]:
    header = struct.Struct(">32sQQ16sQ")
    rows = [
        (i, e.originator_id.bytes, e.originator_version, e.topic.encode(), e.state)  # type: ignore[union-attr]
        for i, e in enumerate((e for b in batches for e in b), start=1)
    ]
    started = time.perf_counter()
    prev, prev_pos = bytes(32), 0
    for pos, oid, ver, topic, state in rows:
        prev = link(prev, pos, prev_pos, oid, ver, topic, state)
        prev_pos = pos
    chain_s = time.perf_counter() - started
    sha = hashlib.sha256
    started = time.perf_counter()
    for pos, oid, ver, topic, state in rows:
        sha(header.pack(prev, pos, pos, oid, ver) + topic + b"\0" + state).digest()
    plain_s = time.perf_counter() - started
    return chain_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    n = args.events
    print(f"generating {n:,} events of ~250 bytes in batches of {args.batch} ...", flush=True)
    batches = make_events(n, args.batch)

    chain_s, plain_s = hashing_core(batches)
    print(f"hashing core   chain link : {n / chain_s:>12,.0f} events/s")
    print(
        f"               plain SHA-256 same bytes: {n / plain_s:>12,.0f} events/s"
        f"  (chain/plain = {plain_s / chain_s:.2f})"
    )

    with tempfile.TemporaryDirectory() as tmp:
        raw_s = write(Path(tmp) / "raw.sqlite", batches, chained=False)
        ours_s = write(Path(tmp) / "chained.sqlite", batches, chained=True)
        print(f"writes         eventsourcing SQLite recorder : {n / raw_s:>10,.0f} events/s")
        print(
            f"               chained recorder (ours)       : {n / ours_s:>10,.0f} events/s"
            f"  (ours/raw = {raw_s / ours_s:.2f})"
        )

        path = Path(tmp) / "chained.sqlite"
        started = time.perf_counter()
        with SQLiteSource(str(path)) as source:
            verdict = verify(source)
        verify_s = time.perf_counter() - started
        if not verdict.intact or verdict.checked != n:
            raise SystemExit(f"verification failed: {verdict.as_dict()}")
        started = time.perf_counter()
        with SQLiteSource(str(path)) as source:
            read = sum(1 for _ in source.records())
        read_s = time.perf_counter() - started
        print(
            f"audit verify   {n:,} stored events: {verify_s:.2f} s "
            f"({n / verify_s:,.0f} events/s; reading alone {read_s:.2f} s for {read:,})"
            f"  target < 10 s: {'met' if verify_s < 10 else 'NOT met'}"
        )
        print(
            f"hashing core target >= 1,000,000 events/s: "
            f"{'met' if n / chain_s >= 1_000_000 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
