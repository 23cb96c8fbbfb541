"""Access-controlled reads per second, each with its access event durably recorded (SQLite).

    .venv/bin/python bench/access_reads.py [--candidates 50] [--reads 4000] [--clients 8]

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

Target (issue #4): >= 2,000 recorded reads/s on SQLite.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from infra.bootstrap import build_app
from infra.config import Settings
from infra.group_commit import GroupCommit
from services.access import Role
from services.dto import ReadProfile, ReadProfiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has the story builders
from tests import story


class Person(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name


class Read(Aggregate):
    @event("Recorded")
    def __init__(self, subject: UUID, principal: str) -> None:
        self.subject = subject


def run(clients: int, picks: list[UUID], read: Callable[[UUID], object]) -> float:
    """Reads per second with `clients` threads sharing the picks."""
    shares = [picks[i::clients] for i in range(clients)]
    errors: list[BaseException] = []

    def client(share: list[UUID]) -> None:
        try:
            for candidate_id in share:
                read(candidate_id)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--page", type=int, default=25, help="profiles per caseload read")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(
            Settings(database_url=f"sqlite:///{Path(tmp) / 's.sqlite'}", data_dir=Path(tmp))
        )
        stories = [
            story.investigation_under_way(app, f"Candidate {i}") for i in range(args.candidates)
        ]
        picks = [rng.choice(stories).candidate_id for _ in range(args.reads)]
        print(
            f"store: {args.candidates} candidates under investigation, "
            f"{app.recorder.max_notification_id()} events; {args.reads} reads per figure"
        )

        def ours(candidate_id: UUID) -> object:
            return app.read_profile(
                ReadProfile(
                    candidate_id=candidate_id,
                    principal=story.RECRUITER,
                    role=Role.RECRUITER,
                    purpose=story.PURPOSE,
                )
            )

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
        recorded = app.recorder.max_notification_id()
        app.close()

        raw_app = Application[UUID](
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(tmp) / "raw.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        )
        people = [Person(f"Candidate {i}") for i in range(args.candidates)]
        raw_app.save(*people)
        raw_picks = [rng.choice(people).id for _ in range(args.reads)]

        def raw(candidate_id: UUID) -> object:
            raw_app.repository.get(candidate_id)
            return raw_app.save(Read(candidate_id, "x"))

        raw_one = run(1, raw_picks, raw)
        raw_many = run(args.clients, raw_picks, raw)
        raw_app.close()

    print(f"events stored after the runs: {recorded} (one access event per profile read)")
    print(f"{'':34}{'1 client':>12}{f'{args.clients} clients':>14}")
    print(f"{'profile reads, recorded (ours)':34}{ours_one:>12,.0f}{ours_many:>14,.0f}  reads/s")
    print(f"{'raw eventsourcing get + save':34}{raw_one:>12,.0f}{raw_many:>14,.0f}  reads/s")
    print(f"{'ours / raw':34}{ours_one / raw_one:>12.2f}{ours_many / raw_many:>14.2f}")
    print(
        f"  {args.clients} clients: {batches} read batches of {mean_batch:.1f} reads on average "
        f"(views caught up and decisions taken once a batch); {transactions} transactions "
        f"of {per_transaction:.1f} saves each (group commit)"
    )
    print(
        f"{f'caseload reads, {args.page} per request':34}{pages_one:>12,.0f}{pages_many:>14,.0f}"
        "  profiles/s (each its own decision and access event)"
    )
    for label, rate in (("single reads", ours_many), ("caseload reads", pages_many)):
        verdict = "met" if rate >= 2000 else "NOT met"
        print(f"target >= 2,000 recorded reads/s on SQLite, {label}: {verdict} ({rate:,.0f}/s)")


if __name__ == "__main__":
    main()
