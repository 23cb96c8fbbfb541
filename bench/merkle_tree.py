"""The Merkle tree over the log (issue #22): what it costs to append, how fast the backfill builds
it over an existing store, and how fast proofs are built and verified on a large tree.

    .venv/bin/python bench/merkle_tree.py [--events 3000] [--writers 1 4] [--runs 3]
                                          [--commands 1500] [--store 200000] [--proofs 2000]

Appending: the same stored events (a 250-byte state each) written through three recorders on
stores of their own, in turns, in the same run: the raw `eventsourcing` library's recorder, ours
with the chain alone (the tree step left out), and ours with chain and tree (ours on the
application's datastore, infra/store/pool.py) — one event a
transaction, with 1 writer and with 4 (group commit). Events per second, median of `--runs`.

Commands: registering candidates through the use case on three stores (raw library, chain
alone, chain and tree), in turns of 50, commands a second.

Tree: a store of `--store` events written with the chain alone (10,000 a transaction), then
`backfill_tree` over it, timed (each record checked against its link); then `--proofs` random
inclusion proofs (a record's position to its leaf, O(log n) nodes in one statement) and
consistency proofs against the whole tree, built from the stored tree and verified by
RFC 9162's algorithms. Medians in microseconds.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from suite import Figure

from infra.audit import merkle
from infra.audit.log_tree import LogTree
from infra.audit.sources import SQLiteSource
from infra.store.pool import Datastore
from infra.store.recorder import ChainedSQLiteApplicationRecorder

STATE = b'{"candidate_id":"%s","name":"sealed:' + b"x" * 180 + b'","actor":"recruiter:bench"}'


class ChainAlone(ChainedSQLiteApplicationRecorder):
    """Ours without the tree step: the chain (and subject index) as before the tree."""

    def _extend_tree(self, *args: Any) -> None:
        pass


def events(n: int) -> list[StoredEvent]:
    return [
        StoredEvent(uuid.uuid4(), 1, "bench:Event", STATE % uuid.uuid4().hex.encode())
        for _ in range(n)
    ]


def recorder(kind: str, work: Path) -> Any:
    """The raw library's recorder on its own datastore; ours on the datastore the application
    gives them (infra/store/pool.py: prepared statements kept, as `PERSISTENCE_MODULE` has
    it), or each statement would be prepared afresh every write, the tree's as well."""
    path = str(work / f"{kind}.sqlite")
    datastore = SQLiteDatastore(path) if kind == "raw" else Datastore(path)
    cls = {
        "raw": SQLiteApplicationRecorder,
        "chain": ChainAlone,
        "tree": ChainedSQLiteApplicationRecorder,
    }[kind]
    r = cls(datastore, "stored_events")
    r.create_table()
    return r


def append_round(rec: Any, batch: list[StoredEvent], writers: int) -> tuple[float, float]:
    """Seconds of wall clock and of this process's CPU to write `batch`, one event a call,
    with `writers` threads."""
    parts = [batch[i::writers] for i in range(writers)]

    def write(part: list[StoredEvent]) -> None:
        for e in part:
            rec.insert_events([e])

    threads = [threading.Thread(target=write, args=(p,)) for p in parts]
    started, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, time.process_time() - cpu


KINDS = ("raw", "chain", "tree")


def appending(n: int, writers: int, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per run and side: events/s (wall) and CPU microseconds an event. The sides take turns
    a hundred events at a time (the order rotating), so that a machine shared with other
    work slows each alike."""
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in KINDS}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-tree-") as folder:
            _append_run(Path(folder), n, writers, out)
    return out


def _append_run(
    work: Path, n: int, writers: int, out: dict[str, tuple[list[float], list[float]]]
) -> None:
    recs = {kind: recorder(kind, work) for kind in KINDS}
    for rec in recs.values():  # warm
        rec.insert_events(events(50))
    wall = dict.fromkeys(KINDS, 0.0)
    cpu = dict.fromkeys(KINDS, 0.0)
    for turn in range(max(1, n // 100)):
        order = KINDS[turn % 3 :] + KINDS[: turn % 3]
        for kind in order:
            w, c = append_round(recs[kind], events(100), writers)
            wall[kind] += w
            cpu[kind] += c
    done = max(1, n // 100) * 100
    for kind in KINDS:
        out[kind][0].append(done / wall[kind])
        out[kind][1].append(cpu[kind] / done * 1e6)
    for rec in recs.values():
        rec.datastore.close()


def commanding(n: int, runs: int) -> dict[str, list[float]]:
    """Registering candidates through the use case (bench/commands.py's `register`: DTO,
    rules, the name and address sealed, chained, indexed, one write) on three stores: the
    raw library saving the same values, ours with the chain alone, ours with chain and tree.
    Commands a second, sides in turns of 50."""
    from commands import Ours, Raw, raw_env
    from scratch import scratch_store

    from infra.store.recorder import chained

    out: dict[str, list[float]] = {k: [] for k in KINDS}
    for _ in range(runs):
        with scratch_store("bench-tree-") as one, scratch_store("bench-tree-") as two:
            sides = {"raw": Raw(raw_env(one, one.data_dir)), "chain": Ours(one), "tree": Ours(two)}
            recorder = chained(sides["chain"].app.recorder)
            recorder._extend_tree = lambda *args: None  # type: ignore[method-assign]
            try:
                wall = dict.fromkeys(KINDS, 0.0)
                for turn in range(max(1, n // 50)):
                    for kind in KINDS[turn % 3 :] + KINDS[: turn % 3]:
                        started = time.perf_counter()
                        for _ in range(50):
                            sides[kind].register()
                        wall[kind] += time.perf_counter() - started
            finally:
                for side in sides.values():
                    side.close()
            for kind in KINDS:
                out[kind].append(max(1, n // 50) * 50 / wall[kind])
        for settings in (one, two):
            shutil.rmtree(settings.data_dir, ignore_errors=True)
    return out


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median microseconds of `fn`."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def tree_figures(size: int, proofs: int, rng: random.Random) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as work:
        return _tree_figures(Path(work), size, proofs, rng)


def _tree_figures(work: Path, size: int, proofs: int, rng: random.Random) -> dict[str, float]:
    rec = recorder("chain", work)
    started = time.perf_counter()
    for start in range(0, size, 10_000):
        rec.insert_events(events(min(10_000, size - start)))
    written = time.perf_counter() - started
    tree = ChainedSQLiteApplicationRecorder(rec.datastore, "stored_events")
    started = time.perf_counter()
    while tree.backfill_tree(50_000)[0]:
        pass
    backfill = time.perf_counter() - started
    with SQLiteSource(str(work / "chain.sqlite")) as source:
        log = LogTree(source)
        n = log.size
        assert n == size
        head = log.tree_head(n)
        positions = [rng.randint(1, n) for _ in range(proofs)]
        olds = [rng.randint(1, n - 1) for _ in range(proofs)]
        it = iter(positions)
        inclusion = timed(lambda: log.prove(next(it), n), proofs)
        built = [log.prove(p, n) for p in positions[:200]]
        it2 = iter(built * (proofs // 200 + 1))

        def check_one() -> None:
            p = next(it2)
            assert merkle.verify_inclusion(p.index, n, p.leaf, p.path, head.root)

        verify_inclusion = timed(check_one, proofs)
        it3 = iter(olds)
        consistency = timed(lambda: log.consistency_proof(next(it3), n), proofs)
        pairs = [(m, log.tree_head(m).root, log.consistency_proof(m, n)) for m in olds[:200]]
        it4 = iter(pairs * (proofs // 200 + 1))

        def check_two() -> None:
            m, old_root, proof = next(it4)
            assert merkle.verify_consistency(m, n, old_root, head.root, proof)

        verify_consistency = timed(check_two, proofs)
        tree_head = timed(lambda: log.tree_head(rng.randint(1, n)), proofs)
    return {
        "store written (chain alone), s": written,
        "backfill, s": backfill,
        "backfill, events/s": size / backfill,
        "tree head of any size, us": tree_head,
        "inclusion proof built, us": inclusion,
        "inclusion proof verified, us": verify_inclusion,
        "consistency proof built, us": consistency,
        "consistency proof verified, us": verify_consistency,
    }


def suite_figures(runs: int, quick: bool) -> list[Figure]:
    """The suite's figures (bench/run.py): appending and commands against the chain alone (the
    raw library's rate in the note), the backfill and the proofs on one large tree."""
    out: list[Figure] = []
    for writers in (1, 4):
        got = appending(300 if quick else 3000, writers, runs)
        raw = statistics.median(got["raw"][0])
        cpu = {k: statistics.median(v[1]) for k, v in got.items()}
        figure = Figure(
            f"append with the Merkle tree, SQLite, {writers} writer(s)",
            "events/s",
            got["tree"][0],
            got["chain"][0],
            "chain alone",
            ">= 0.91x chain alone (<= 10% cost)",
            note=f"raw eventsourcing {raw:,.0f}/s; CPU an event {cpu['tree']:.0f} us against "
            f"{cpu['chain']:.0f} us",
        )
        figure.met = (figure.ratio or 0) >= 1 / 1.1
        out.append(figure)
    rates = commanding(150 if quick else 1500, runs)
    figure = Figure(
        "register commands with the Merkle tree, SQLite",
        "commands/s",
        rates["tree"],
        rates["chain"],
        "chain alone",
        ">= 0.91x chain alone (<= 10% cost)",
        note=f"raw eventsourcing {statistics.median(rates['raw']):,.0f}/s",
    )
    figure.met = (figure.ratio or 0) >= 1 / 1.1
    out.append(figure)
    size = 5_000 if quick else 1_000_000
    tree = tree_figures(size, 200 if quick else 2000, random.Random(22))
    where = f"a tree of {size:,} events"  # not one of the suite's stores: said in the note
    backfill = Figure("tree backfill", "events/s", [tree["backfill, events/s"]], note=where)
    backfill.target = ">= 33,334/s (1M in < 30 s)"
    backfill.met = tree["backfill, events/s"] >= 33_334 if size >= 1_000_000 else None
    out.append(backfill)
    for name in (
        "inclusion proof built",
        "inclusion proof verified",
        "consistency proof built",
        "consistency proof verified",
    ):
        value = tree[f"{name}, us"]
        figure = Figure(name, "us", [value], target="< 1,000 us", note=where)
        figure.met = value < 1000 if size >= 1_000_000 else None
        out.append(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--writers", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=1500)
    parser.add_argument("--store", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=2000)
    args = parser.parse_args()
    for writers in args.writers:
        got = appending(args.events, writers, args.runs)
        rate = {k: statistics.median(v[0]) for k, v in got.items()}
        cpu = {k: statistics.median(v[1]) for k, v in got.items()}
        print(
            f"append, SQLite, {writers} writer(s), {args.events} events x {args.runs} runs: "
            f"raw {rate['raw']:,.0f}/s, chain alone {rate['chain']:,.0f}/s, chain+tree "
            f"{rate['tree']:,.0f}/s; tree/chain {rate['tree'] / rate['chain']:.3f}x "
            f"(cost {rate['chain'] / rate['tree'] - 1:+.1%}), "
            f"tree/raw {rate['tree'] / rate['raw']:.3f}x"
        )
        print(
            f"  CPU an event: raw {cpu['raw']:.0f} us, chain alone {cpu['chain']:.0f} us, "
            f"chain+tree {cpu['tree']:.0f} us (cost {cpu['tree'] / cpu['chain'] - 1:+.1%})"
        )
    if args.commands:
        rates = {k: statistics.median(v) for k, v in commanding(args.commands, args.runs).items()}
        print(
            f"register commands, SQLite, 1 writer, {args.commands} x {args.runs} runs: raw "
            f"{rates['raw']:,.0f}/s, chain alone {rates['chain']:,.0f}/s, chain+tree "
            f"{rates['tree']:,.0f}/s; tree/chain {rates['tree'] / rates['chain']:.3f}x "
            f"(cost {rates['chain'] / rates['tree'] - 1:+.1%}), "
            f"tree/raw {rates['tree'] / rates['raw']:.3f}x"
        )
    if args.store:
        for name, value in tree_figures(args.store, args.proofs, random.Random(22)).items():
            print(f"tree [{args.store:,} events]: {name}: {value:,.1f}")


if __name__ == "__main__":
    main()
