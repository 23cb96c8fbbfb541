"""Audited reads over HTTP against the same reads in process, with commands arriving at the
same time; and the dashboard summary's latency over HTTP. One store, one run.

    .venv/bin/python bench/http_load.py [--candidates 50] [--reads 3000] [--clients 8]
                                        [--summaries 400] [--commands 40] [--rounds 3]

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
     the server is what is measured) GET /v1/candidates/{id}/profile while one more, from
     the same loop, POSTs /v1/candidates at the same pace — the same mix. Authentication
     (the token's principal loaded and its hash compared) is part of every request.
  5. Steps 2 and 4 are one round of each side; `--rounds` rounds (3) take turns going first,
     each in-process round on a freshly opened application and each HTTP round on a server
     started for it. The verdict is on the median of the rounds' ratios (HTTP to in process,
     measured back to back): the machine's speed moved by half within one session here, more
     than the gap being measured, and a round's pair leaves most of that out.
  6. The dashboard summary: `--summaries` sequential GETs of /v1/dashboard/summary in the
     last round if the server has that route (else the in-process `dashboard_summary()`),
     p50 and p99.

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


async def _reads_over(
    host: str,
    port: int,
    token: str,
    clients: int,
    picks: list[UUID],
    commands_per_second: float = 0.0,
    tag: str = "",
) -> tuple[float, float]:
    """`clients` keep-alive connections on asyncio streams, each sending the next read as
    soon as the last answered: a load generator light enough not to be what is measured
    (httpx in threads spends more time per request than the server). With
    `commands_per_second`, one more connection POSTs a registration at that pace while the
    reads run, from the same loop (a client thread of its own took the GIL from the readers'
    loop for milliseconds at a time: the client, not the server, was what slowed). Returns
    (reads a second, commands a second)."""
    queue = list(reversed(picks))
    query = urlencode({"purpose": story.PURPOSE})
    auth = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"

    async def answer(reader: asyncio.StreamReader, expected: int, what: str) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
        body = await reader.readexactly(length)
        if status != expected:
            raise RuntimeError(f"{what} answered {status}: {body[:200]!r}")

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                candidate_id = queue.pop()
                writer.write(
                    f"GET /v1/candidates/{candidate_id}/profile?{query} HTTP/1.1\r\n"
                    f"{auth}\r\n".encode()
                )
                await answer(reader, 200, "read")
        finally:
            writer.close()

    sent = [0]

    async def commander() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        began = time.perf_counter()
        try:
            while queue:
                body = f'{{"name": "Web {tag}.{sent[0]}"}}'.encode()
                writer.write(
                    f"POST /v1/candidates HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await answer(reader, 201, "register")
                sent[0] += 1
                ahead = began + sent[0] / commands_per_second - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            writer.close()

    started = time.perf_counter()
    readers = [connection() for _ in range(clients)]
    await asyncio.gather(*readers, *([commander()] if commands_per_second > 0 else []))
    took = time.perf_counter() - started
    return len(picks) / took, sent[0] / took


def http_reads(
    base: str,
    token: str,
    clients: int,
    picks: list[UUID],
    commands_per_second: float = 0.0,
    tag: str = "",
) -> tuple[float, float]:
    where = urlsplit(base)
    return asyncio.run(
        _reads_over(
            where.hostname or "127.0.0.1",
            where.port or 80,
            token,
            clients,
            picks,
            commands_per_second,
            tag,
        )
    )


def summaries(get: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        get()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def in_process_round(
    settings: Settings, picks: list[UUID], clients: int, per_second: float, n: int
) -> tuple[float, float, float, Backcheck]:
    """Reads alone and with commands through the use cases in this process; the app is left
    open for the caller (the summary's timing), who closes it."""
    app = build_app(settings)
    ours = profile_read(app)
    ours(picks[0])

    def register_in_process(i: int) -> object:
        return app.register_candidate(RegisterCandidate(name=f"New {n}.{i}", actor=story.RECRUITER))

    alone = run(clients, picks, ours)
    mixed, writes = with_writer(register_in_process, lambda: run(clients, picks, ours), per_second)
    return alone, mixed, writes, app


def http_round(
    settings: Settings,
    token: str,
    picks: list[UUID],
    clients: int,
    per_second: float,
    n: int,
    summaries_wanted: int,
) -> tuple[float, float, float, tuple[float, float] | None]:
    """Reads alone and with commands over HTTP, on a server started for the round; and the
    summary's latency over HTTP when asked for (None if the server has no such route)."""
    process, base = serve(settings)
    try:
        http_reads(base, token, 1, picks[:20])  # warm: connections, caches
        alone, _ = http_reads(base, token, clients, picks)
        mixed, writes = http_reads(base, token, clients, picks, per_second, str(n))
        summary = None
        if summaries_wanted:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                if client.get("/v1/dashboard/summary").status_code == 200:
                    summary = summaries(
                        lambda: client.get("/v1/dashboard/summary"), summaries_wanted
                    )
    finally:
        process.terminate()
        process.wait(timeout=30)
    return alone, mixed, writes, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--summaries", type=int, default=400, help="0: not measured")
    parser.add_argument("--commands", type=float, default=40, help="commands a second")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of each side, taking turns to go first"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    figures: dict[str, list[float]] = {
        f"{side}_{what}": [] for side in ("ours", "http") for what in ("alone", "mixed", "writes")
    }
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
            f"{app.recorder.max_notification_id()} events; {args.reads} reads per figure, "
            f"{args.rounds} rounds of each side (the server started for each of its rounds)"
        )
        app.close()

        raw_app = raw_application(Path(tmp) / "raw.sqlite")
        people = [Person(f"Candidate {i}") for i in range(args.candidates)]
        raw_app.save(*people)
        raw_picks = [rng.choice(people).id for _ in range(args.reads)]
        raw_rate = run(args.clients, raw_picks, raw_read(raw_app))
        raw_app.close()

        local_summary: tuple[float, float] = (0.0, 0.0)
        http_summary: tuple[float, float] | None = None
        for n in range(args.rounds):
            # the side that goes first takes turns: a machine speeding up or slowing down
            # over the run favours neither
            for side in ("ours", "http") if n % 2 == 0 else ("http", "ours"):
                if side == "ours":
                    alone, mixed, writes, app = in_process_round(
                        settings, picks, args.clients, args.commands, n
                    )
                    if n == args.rounds - 1 and args.summaries:
                        local_summary = summaries(app.dashboard_summary, args.summaries)
                    app.close()
                else:
                    alone, mixed, writes, summary = http_round(
                        settings,
                        token,
                        picks,
                        args.clients,
                        args.commands,
                        n,
                        args.summaries if n == args.rounds - 1 else 0,
                    )
                    http_summary = summary or http_summary
                figures[f"{side}_alone"].append(alone)
                figures[f"{side}_mixed"].append(mixed)
                figures[f"{side}_writes"].append(writes)
            print(
                f"  round {n + 1}: in process {figures['ours_alone'][-1]:,.0f} alone, "
                f"{figures['ours_mixed'][-1]:,.0f} with commands; over HTTP "
                f"{figures['http_alone'][-1]:,.0f}, {figures['http_mixed'][-1]:,.0f}: "
                f"{figures['http_mixed'][-1] / figures['ours_mixed'][-1]:.2f} with commands, "
                f"{figures['http_alone'][-1] / figures['ours_alone'][-1]:.2f} alone",
                flush=True,
            )
        app = build_app(settings)
        events = app.recorder.max_notification_id()
        app.close()

    med = {k: statistics.median(v) for k, v in figures.items()}
    paired_mixed = statistics.median(
        h / o for h, o in zip(figures["http_mixed"], figures["ours_mixed"], strict=True)
    )
    paired_alone = statistics.median(
        h / o for h, o in zip(figures["http_alone"], figures["ours_alone"], strict=True)
    )
    print(f"events stored after the runs: {events}")
    print(speed_line())
    print(f"{'medians of the rounds':40}{'reads alone':>14}{'with commands':>15}{'commands':>10}")
    for name, side in (
        ("audited profile reads, in process", "ours"),
        ("audited profile reads, over HTTP", "http"),
    ):
        print(
            f"{name:40}{med[side + '_alone']:>14,.0f}{med[side + '_mixed']:>15,.0f}"
            f"{med[side + '_writes']:>10,.0f}  /s"
        )
    print(f"{'raw eventsourcing get + save':40}{raw_rate:>14,.0f}  /s")
    print(
        f"HTTP / in process, the median of the rounds' ratios: with commands {paired_mixed:.2f} "
        f"(target >= 0.6: {'met' if paired_mixed >= 0.6 else 'NOT met'}), "
        f"reads alone {paired_alone:.2f}; the medians' ratios "
        f"{med['http_mixed'] / med['ours_mixed']:.2f} and "
        f"{med['http_alone'] / med['ours_alone']:.2f}; in process / raw: "
        f"{med['ours_alone'] / raw_rate:.2f}; HTTP / raw: {med['http_alone'] / raw_rate:.2f}"
    )
    if not args.summaries:
        print("dashboard summary: not measured (--summaries 0)")
        return
    over_http = http_summary is not None
    shown = http_summary if http_summary is not None else local_summary
    where = "over HTTP" if over_http else "in process (the server has no summary route)"
    print(
        f"dashboard summary {where}, {args.summaries} calls on {events} events: "
        f"p50 {shown[0]:.1f} ms, p99 {shown[1]:.1f} ms (target p99 < 50 ms); "
        f"in process p50 {local_summary[0]:.1f} ms, p99 {local_summary[1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
