"""Access-controlled reads per second, each with its access event durably recorded (SQLite).

    .venv/bin/python bench/access_reads.py [--candidates 50] [--reads 4000] [--clients 8]
                                           [--processes 2]

Every read goes through the query service: views brought up to date → facts → Cedar decision
→ redaction → Access.Recorded saved (fsync'd, hash-chained) before the answer is returned.
Measured in one run, on the same machine:

  - ours, one client at a time, then `--clients` concurrent clients (threads, as a web server
    would run requests). Concurrent reads are batched (services/batching.py): the first
    reader to arrive brings the views up to date once, decides every read queued behind it
    and stores their access events in one write (one fsync), then wakes each reader with its
    own answer; other concurrent saves share transactions too (group commit). The access
    events are applied to the access-log view in batches;
  - the raw eventsourcing baseline: a stock `Application` on stock SQLite persistence doing the
    storage part of a read (get the candidate aggregate, save one small event), with the same
    client counts.

  - caseload reads: one request asks for a page of profiles (`read_profiles`); each profile
    is decided and recorded on its own, the page's access events are saved in one write.

  - the same `--clients` spread over `--processes` processes (default 2, one a core: the
    GIL keeps one process on one core), as several service instances on one store would run:
    their writers take turns through the store's writer lock (infra/store/filelock.py). The raw
    baseline is run the same way on its own store.

Target (issue #4): >= 2,000 recorded reads/s on SQLite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from machine import speed_line

from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.group_commit import GroupCommit
from services.access import Role
from services.application import Backcheck
from services.dto import ReadProfile, ReadProfiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has the story builders
from tests import story

OneRead = Callable[[UUID], object]  # one read of the candidate with this id
T = TypeVar("T")


class Person(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name


class Read(Aggregate):
    @event("Recorded")
    def __init__(self, subject: UUID, principal: str) -> None:
        self.subject = subject


def run(clients: int, picks: list[T], read: Callable[[T], object]) -> float:
    """Calls per second of `read` over `picks` with `clients` threads sharing them (reads
    here; the commands bench's writes too)."""
    shares = [picks[i::clients] for i in range(clients)]
    errors: list[BaseException] = []

    def client(share: list[T]) -> None:
        try:
            for pick in share:
                read(pick)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(picks) / elapsed


def raw_application(db: Path) -> Application[UUID]:
    return Application[UUID](
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(db),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    )


def profile_read(app: Backcheck) -> OneRead:
    """One access-controlled profile read of ours, recorded."""

    def ours(candidate_id: UUID) -> object:
        return app.read_profile(
            ReadProfile(
                candidate_id=candidate_id,
                principal=story.RECRUITER,
                role=Role.RECRUITER,
                purpose=story.PURPOSE,
            )
        )

    return ours


def raw_read(raw_app: Application[UUID]) -> OneRead:
    """The storage part of a read on the stock library: get the aggregate, save one event."""

    def raw(candidate_id: UUID) -> object:
        raw_app.repository.get(candidate_id)
        return raw_app.save(Read(candidate_id, "x"))

    return raw


def reader(kind: str, store: Settings | Path) -> tuple[OneRead, Callable[[], None]]:
    """One read of ours (`store` is the Settings) or of the raw baseline (`store` is its
    SQLite file), and how to close what it opened."""
    if kind == "ours":
        assert isinstance(store, Settings)
        app = build_app(store)
        return profile_read(app), app.close
    assert isinstance(store, Path)
    raw_app = raw_application(store)
    return raw_read(raw_app), raw_app.close


def reads_in_a_process(
    kind: str,
    store: Settings | Path,
    picks: list[UUID],
    clients: int,
    start: Barrier,
    done: Queue[str | None],
) -> None:
    """A process of the multi-process figure: its own application on the shared store,
    warmed, then its clients' reads once every process is ready."""
    read, close = reader(kind, store)
    try:
        read(picks[0])
        start.wait()
        run(clients, picks, read)
        done.put(None)
    except BaseException as e:
        done.put(repr(e))
        raise
    finally:
        close()


def run_in_processes(
    processes: int, clients: int, kind: str, store: Settings | Path, picks: list[UUID]
) -> float:
    """Reads per second of `clients` threads spread over `processes` processes."""
    spawn = multiprocessing.get_context("spawn")
    start, done = spawn.Barrier(processes + 1), spawn.Queue()
    shares = [picks[i::processes] for i in range(processes)]
    threads = [clients // processes + (i < clients % processes) for i in range(processes)]
    workers = [
        spawn.Process(
            target=reads_in_a_process, args=(kind, store, shares[i], threads[i], start, done)
        )
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    start.wait()
    started = time.perf_counter()
    failed = [e for e in (done.get() for _ in workers) if e is not None]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    if failed:
        raise RuntimeError(f"a reading process failed: {failed[0]}")
    return len(picks) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--page", type=int, default=25, help="profiles per caseload read")
    parser.add_argument(
        "--processes", type=int, default=2, help="processes the clients are spread over"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 's.sqlite'}", data_dir=Path(tmp))
        app = build_app(settings)
        stories = [
            story.investigation_under_way(app, f"Candidate {i}") for i in range(args.candidates)
        ]
        picks = [rng.choice(stories).candidate_id for _ in range(args.reads)]
        print(
            f"store: {args.candidates} candidates under investigation, "
            f"{app.recorder.max_notification_id()} events; {args.reads} reads per figure"
        )

        ours = profile_read(app)
        assert isinstance(app.recorder, GroupCommit)
        ours(picks[0])  # warm the caches the way a running service has them
        ours_one = run(1, picks, ours)
        reads, commits = app.recorded_reads, app.recorder.group
        before = (reads.rounds, reads.items, commits.rounds, commits.items)
        ours_many = run(args.clients, picks, ours)
        batches = reads.rounds - before[0]
        mean_batch = (reads.items - before[1]) / batches if batches else 0.0
        transactions = commits.rounds - before[2]
        per_transaction = (commits.items - before[3]) / transactions if transactions else 0.0
        pages = [picks[i : i + args.page] for i in range(0, len(picks), args.page)]

        def page(first: UUID) -> object:
            return app.read_profiles(
                ReadProfiles(
                    candidate_ids=pages[page_of[first]],
                    principal=story.RECRUITER,
                    role=Role.RECRUITER,
                    purpose=story.PURPOSE,
                )
            )

        page_of = {p[0]: i for i, p in enumerate(pages)}
        firsts = [p[0] for p in pages]
        profiles = sum(len(set(p)) for p in pages)
        pages_one = run(1, firsts, page) * profiles / len(pages)
        pages_many = run(args.clients, firsts, page) * profiles / len(pages)
        app.close()
        ours_spread = run_in_processes(args.processes, args.clients, "ours", settings, picks)
        app = build_app(settings)
        recorded = app.recorder.max_notification_id()
        app.close()

        raw_db = Path(tmp) / "raw.sqlite"
        raw_app = raw_application(raw_db)
        people = [Person(f"Candidate {i}") for i in range(args.candidates)]
        raw_app.save(*people)
        raw_picks = [rng.choice(people).id for _ in range(args.reads)]

        raw = raw_read(raw_app)
        raw_one = run(1, raw_picks, raw)
        raw_many = run(args.clients, raw_picks, raw)
        raw_app.close()
        raw_spread = run_in_processes(args.processes, args.clients, "raw", raw_db, raw_picks)

    print(f"events stored after the runs: {recorded} (one access event per profile read)")
    print(speed_line())
    spread = f"{args.clients} in {args.processes} proc."
    print(f"{'':34}{'1 client':>12}{f'{args.clients} clients':>14}{spread:>18}")
    print(
        f"{'profile reads, recorded (ours)':34}{ours_one:>12,.0f}{ours_many:>14,.0f}"
        f"{ours_spread:>18,.0f}  reads/s"
    )
    print(
        f"{'raw eventsourcing get + save':34}{raw_one:>12,.0f}{raw_many:>14,.0f}"
        f"{raw_spread:>18,.0f}  reads/s"
    )
    print(
        f"{'ours / raw':34}{ours_one / raw_one:>12.2f}{ours_many / raw_many:>14.2f}"
        f"{ours_spread / raw_spread:>18.2f}"
    )
    print(
        f"  {args.clients} clients: {batches} read batches of {mean_batch:.1f} reads on average "
        f"(views caught up and decisions taken once a batch); {transactions} transactions "
        f"of {per_transaction:.1f} saves each (group commit)"
    )
    print(
        f"{f'caseload reads, {args.page} per request':34}{pages_one:>12,.0f}{pages_many:>14,.0f}"
        "  profiles/s (each its own decision and access event)"
    )
    for label, rate in (
        ("single reads", ours_many),
        (f"single reads, {args.processes} processes", ours_spread),
        ("caseload reads", pages_many),
    ):
        verdict = "met" if rate >= 2000 else "NOT met"
        print(f"target >= 2,000 recorded reads/s on SQLite, {label}: {verdict} ({rate:,.0f}/s)")


if __name__ == "__main__":
    main()
