"""Hash-chain benchmark: hashing core, write overhead, and `audit verify` over a real store.

    .venv/bin/python bench/chain_verify.py [--events 1000000] [--batch 1000]

Prints, in one run and on the same bytes:
  * the hashing core (infra.audit.chain.link) in events/s, next to plain SHA-256 of the same bytes;
  * writes through our chained SQLite recorder next to the library's plain SQLite recorder
    (the raw `eventsourcing` baseline), as events/s and their ratio;
  * `audit verify` (infra.audit.verification.verify on the SQLite file) over every stored
    event — the chain and the Merkle tree — in seconds, wall and CPU (workers included).
Targets (issue #3): hashing core >= 1M events/s; verify of 1M stored events < 10 s on SQLite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from machine import best_of_three

from infra.audit.chain import ACCELERATED, LinkInput, _link_many_python, link_many
from infra.audit.verification import SQLiteSource, open_source, verify
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


def hashing_core(batches: list[list[StoredEvent]]) -> dict[str, float]:
    """Seconds to recompute every link (record digest + link) as the verifier does, and to
    take plain SHA-256 of the same record bytes, in one run over the same rows."""
    items: list[LinkInput] = []
    prev = bytes(32)
    for pos, e in enumerate((e for b in batches for e in b), start=1):
        items.append(
            (
                prev,
                pos,
                pos - 1,
                e.originator_id.bytes,
                e.originator_version,  # type: ignore[union-attr]
                e.topic.encode(),
                e.state,
            )
        )
    header = struct.Struct(">16sQ")
    sha = hashlib.sha256

    def plain() -> None:
        for _p, _pp, _x, oid, ver, topic, state in items:
            sha(header.pack(oid, ver) + topic + b"\0" + state).digest()

    def threaded() -> None:
        workers = os.cpu_count() or 1
        step = -(-len(items) // workers)
        with ThreadPoolExecutor(workers) as pool:  # the C core releases the GIL
            list(pool.map(link_many, [items[i : i + step] for i in range(0, len(items), step)]))

    figures = {
        "plain SHA-256, Python": best_of_three(plain),
        "chain, Python reference": best_of_three(lambda: _link_many_python(items)),
    }
    if ACCELERATED:
        figures["chain, C core, 1 thread"] = best_of_three(lambda: link_many(items))
        figures[f"chain, C core, {os.cpu_count()} threads"] = best_of_three(threaded)
    return figures


def _cpu() -> float:
    """CPU seconds of this process and of its children waited for (verify's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    n = args.events
    print(f"generating {n:,} events of ~250 bytes in batches of {args.batch} ...", flush=True)
    batches = make_events(n, args.batch)

    figures = hashing_core(batches)
    plain_s = figures["plain SHA-256, Python"]
    for name, seconds in figures.items():
        print(
            f"hashing core   {name:<28}: {n / seconds:>12,.0f} events/s"
            f"  ({plain_s / seconds:.2f} x plain SHA-256)"
        )
    best_core = n / min(figures.values())
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        raw_s = write(Path(tmp) / "raw.sqlite", batches, chained=False)
        ours_s = write(Path(tmp) / "chained.sqlite", batches, chained=True)
        one_by_one = [[StoredEvent(uuid4(), 1, TOPIC, batches[0][0].state)] for _ in range(2000)]
        raw1_s = write(Path(tmp) / "raw1.sqlite", one_by_one, chained=False)
        ours1_s = write(Path(tmp) / "chained1.sqlite", one_by_one, chained=True)
        print(f"single saves   eventsourcing SQLite recorder : {2000 / raw1_s:>10,.0f} saves/s")
        print(
            f"               chained recorder (ours)       : {2000 / ours1_s:>10,.0f} saves/s"
            f"  (ours/raw = {raw1_s / ours1_s:.2f})"
        )
        print(f"writes         eventsourcing SQLite recorder : {n / raw_s:>10,.0f} events/s")
        print(
            f"               chained recorder (ours)       : {n / ours_s:>10,.0f} events/s"
            f"  (ours/raw = {raw_s / ours_s:.2f})"
        )

        path = Path(tmp) / "chained.sqlite"
        settings = Settings(database_url=f"sqlite:///{path}")
        timings, cpu = {}, {}
        for w in (1, workers):
            started, cpu_before = time.perf_counter(), _cpu()
            with SQLiteSource(str(path)) as source:
                verdict = verify(source, opener=partial(open_source, settings), workers=w)
            timings[w] = time.perf_counter() - started
            cpu[w] = _cpu() - cpu_before
            if not verdict.intact or verdict.checked != n:
                raise SystemExit(f"verification failed: {verdict.as_dict()}")
        verify_s = min(timings.values())
        started = time.perf_counter()
        with SQLiteSource(str(path)) as source:
            read = sum(1 for _ in source.records())
        read_s = time.perf_counter() - started
        print(
            f"audit verify   1 process: {timings[1]:.2f} s ({cpu[1]:.2f} s CPU); "
            f"{workers} processes: {timings[workers]:.2f} s ({cpu[workers]:.2f} s CPU); "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"audit verify   {n:,} stored events: {verify_s:.2f} s "
            f"({n / verify_s:,.0f} events/s; reading alone {read_s:.2f} s for {read:,})"
            f"  target < 10 s: {'met' if verify_s < 10 else 'NOT met'}"
        )
        print(
            f"hashing core target >= 1,000,000 events/s: "
            f"{'met' if best_core >= 1_000_000 else 'NOT met'} ({best_core:,.0f}/s at best)"
        )


if __name__ == "__main__":
    main()
