"""Audited reads over HTTP against the same reads in process, with commands arriving at the
same time; and the dashboard summary's latency over HTTP. One store, one run.

    .venv/bin/python bench/http_load.py [--candidates 50] [--reads 3000] [--clients 8]
                                        [--summaries 400]

  1. A SQLite store with `--candidates` consented candidates, built through the use cases; a
     recruiter principal with an API token.
  2. In process: `--clients` threads read profiles (decided, redacted, recorded: the same
     `read_profile` every transport runs), alone, then while one more thread registers
     `--commands` candidates a second (commands competing for the writer) — reads/s and the
     commands/s achieved.
  3. The raw eventsourcing baseline on its own store: get an aggregate and save one event
     (the storage part of a recorded read), same clients.
  4. Over HTTP: `backcheck serve` on the same store, in a process of its own; `--clients`
     keep-alive connections (asyncio streams: a load generator lighter than the server, so
     the server is what is measured) GET /v1/candidates/{id}/profile while one more POSTs
     /v1/candidates at the same pace — the same mix. Authentication (the token's principal
     loaded and its hash compared) is part of every request.
  5. The dashboard summary: `--summaries` sequential GETs of /v1/dashboard/summary if the
     server has that route (else the in-process `dashboard_summary()`), p50 and p99.

Targets (issue 18): HTTP audited reads, with commands, >= 0.6x the in-process rate; the
summary's p99 < 50 ms at any store size (its cost is a few rows by key: bench/dashboard.py
shows it flat in store size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import httpx
from access_reads import Person, profile_read, raw_application, raw_read, run
from machine import speed_line

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import AddPrincipal, RegisterCandidate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has the story builders
from tests import story

BACKCHECK = Path(sys.executable).with_name("backcheck")


def with_writer(
    write: Callable[[int], object], work: Callable[[], float], per_second: float
) -> tuple[float, float]:
    """`work()`'s rate while another thread runs `write(n)` `per_second` times a second (the
    same mix in process and over HTTP: a writer left to go as fast as it can would write
    more in process, where nothing else slows it, and so hold the reads back more there);
    returns (work's rate, writes per second achieved)."""
    stop = threading.Event()
    written = [0]
    errors: list[BaseException] = []

    def writer() -> None:
        started = time.perf_counter()
        try:
            while not stop.is_set():
                write(written[0])
                written[0] += 1
                ahead = started + written[0] / per_second - time.perf_counter()
                if ahead > 0:
                    stop.wait(ahead)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=writer)
    started = time.perf_counter()
    thread.start()
    try:
        rate = work()
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]
    return rate, written[0] / (time.perf_counter() - started)


def serve(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATABASE_URL"] = str(settings.database_url)
    env["BACKCHECK_DATA_DIR"] = str(settings.data_dir)
    out = Path(str(settings.data_dir)) / "serve.out"
    process = subprocess.Popen(
        [str(BACKCHECK), "serve", "--port", "0"],
        env=env,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"serving on (http://\S+)", out.read_text())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            raise SystemExit(f"backcheck serve exited: {out.read_text()}")
        time.sleep(0.2)
    raise SystemExit("backcheck serve did not start")


async def _reads_over(host: str, port: int, token: str, clients: int, picks: list[UUID]) -> float:
    """`clients` keep-alive connections on asyncio streams, each sending the next read as
    soon as the last answered: a load generator light enough not to be what is measured
    (httpx in threads spends more time per request than the server)."""
    queue = list(reversed(picks))
    query = urlencode({"purpose": story.PURPOSE})

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                candidate_id = queue.pop()
                writer.write(
                    f"GET /v1/candidates/{candidate_id}/profile?{query} HTTP/1.1\r\n"
                    f"Host: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
                body = await reader.readexactly(length)
                if status != 200:
                    raise RuntimeError(f"read answered {status}: {body[:200]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(clients)))
    return len(picks) / (time.perf_counter() - started)


def http_reads(base: str, token: str, clients: int, picks: list[UUID]) -> float:
    where = urlsplit(base)
    return asyncio.run(
        _reads_over(where.hostname or "127.0.0.1", where.port or 80, token, clients, picks)
    )


def summaries(get: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        get()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--summaries", type=int, default=400)
    parser.add_argument("--commands", type=float, default=40, help="commands a second")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 's.sqlite'}", data_dir=Path(tmp))
        app: Backcheck = build_app(settings)
        ids = [
            story.consented_candidate(app, f"Candidate {i}").candidate_id
            for i in range(args.candidates)
        ]
        token = app.add_principal(
            AddPrincipal(name=story.RECRUITER, role=Role.RECRUITER, actor="bench")
        ).token
        picks = [rng.choice(ids) for _ in range(args.reads)]
        print(
            f"store: {args.candidates} consented candidates, "
            f"{app.recorder.max_notification_id()} events; {args.reads} reads per figure"
        )

        ours = profile_read(app)
        ours(picks[0])

        def register_in_process(n: int) -> object:
            return app.register_candidate(RegisterCandidate(name=f"New {n}", actor=story.RECRUITER))

        ours_alone = run(args.clients, picks, ours)
        ours_rate, ours_writes = with_writer(
            register_in_process, lambda: run(args.clients, picks, ours), args.commands
        )
        local_summary = summaries(app.dashboard_summary, args.summaries)
        app.close()

        raw_app = raw_application(Path(tmp) / "raw.sqlite")
        people = [Person(f"Candidate {i}") for i in range(args.candidates)]
        raw_app.save(*people)
        raw_picks = [rng.choice(people).id for _ in range(args.reads)]
        raw_rate = run(args.clients, raw_picks, raw_read(raw_app))
        raw_app.close()

        process, base = serve(settings)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as writer:

                def register_over_http(n: int) -> object:
                    r = writer.post("/v1/candidates", json={"name": f"Web {n}"})
                    if r.status_code != 201:
                        raise RuntimeError(f"register answered {r.status_code}: {r.text[:200]}")
                    return r

                http_reads(base, token, 1, picks[:20])  # warm: connections, caches
                http_alone = http_reads(base, token, args.clients, picks)
                http_rate, http_writes = with_writer(
                    register_over_http,
                    lambda: http_reads(base, token, args.clients, picks),
                    args.commands,
                )
                probe = writer.get("/v1/dashboard/summary")
                over_http = probe.status_code == 200
                http_summary = (
                    summaries(lambda: writer.get("/v1/dashboard/summary"), args.summaries)
                    if over_http
                    else local_summary
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
        app = build_app(settings)
        events = app.recorder.max_notification_id()
        app.close()

    print(f"events stored after the runs: {events}")
    print(speed_line())
    print(f"{'':40}{'reads alone':>14}{'with commands':>15}{'commands':>10}")
    for name, alone, mixed, writes in (
        ("audited profile reads, in process", ours_alone, ours_rate, ours_writes),
        ("audited profile reads, over HTTP", http_alone, http_rate, http_writes),
    ):
        print(f"{name:40}{alone:>14,.0f}{mixed:>15,.0f}{writes:>10,.0f}  /s")
    print(f"{'raw eventsourcing get + save':40}{raw_rate:>14,.0f}  /s")
    print(
        f"HTTP / in process: with commands {http_rate / ours_rate:.2f} (target >= 0.6), "
        f"reads alone {http_alone / ours_alone:.2f}; "
        f"in process / raw: {ours_alone / raw_rate:.2f}; HTTP / raw: {http_alone / raw_rate:.2f}"
    )
    where = "over HTTP" if over_http else "in process (the server has no summary route)"
    print(
        f"dashboard summary {where}, {args.summaries} calls on {events} events: "
        f"p50 {http_summary[0]:.1f} ms, p99 {http_summary[1]:.1f} ms (target p99 < 50 ms); "
        f"in process p50 {local_summary[0]:.1f} ms, p99 {local_summary[1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
