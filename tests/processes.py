"""Readers in a process of their own, on the same store as the test (multiprocessing, spawn)."""

from __future__ import annotations

import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from uuid import UUID

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.dto import ReadProfile
from tests import story


def read_in_a_process(
    settings: Settings,
    candidate_ids: list[UUID],
    threads: int,
    reads: int,
    start: Barrier,
    results: Queue[tuple[str, list[str]]],
) -> None:
    """`threads` readers, `reads` reads each, started with the other processes' readers;
    puts ("ok", outcomes) or ("error", what went wrong) on `results`."""
    app = build_app(settings)
    outcomes: list[str] = []
    errors: list[str] = []

    def reader(n: int) -> None:
        try:
            for i in range(reads):
                view = app.read_profile(
                    ReadProfile(
                        candidate_id=candidate_ids[(n + i) % len(candidate_ids)],
                        principal=story.RECRUITER,
                        role=Role.RECRUITER,
                        purpose=story.PURPOSE,
                    )
                )
                outcomes.append(view.outcome)
        except Exception as error:  # reported to the test, which fails on it
            errors.append(repr(error))

    try:
        workers = [threading.Thread(target=reader, args=(n,)) for n in range(threads)]
        start.wait(60)
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        app.close()
    results.put(("error", errors) if errors else ("ok", outcomes))
