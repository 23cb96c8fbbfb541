"""What HTTP itself costs an audited read here: the thinnest server around the same read,
against the same read in process and against `backcheck serve`, in one run (issue 18's
target: over HTTP >= 0.6x in process, bench/http_load.py).

    .venv/bin/python bench/http_floor.py [--reads 3000] [--clients 8] [--commands 40]
                                         [--rounds 3]

One store (50 consented candidates, a recruiter's API token), and three sides reading random
profiles with `--clients` clients while `--commands` registrations a second arrive, as
bench/http_load.py's "with commands" figure:
- `in process`: `read_profile` from `--clients` threads (the target's denominator);
- `thin HTTP`: this file as a server (`--serve`): bare ASGI on uvicorn with httptools and
  uvloop, as `backcheck serve` runs, but no framework, no middleware, no routing, no problem
  answers: the token authenticated, `read_profile` run on a pool of `--clients` threads, its
  answer's JSON sent. Nothing an HTTP server of ours could leave out of a read is left in;
- `backcheck serve`: ours.
The HTTP sides are driven by http_load.py's load generator (asyncio streams, keep-alive). The
sides take turns going first, round by round; each round's ratios are to its own in-process
figure. A thin server near ours says the cost is HTTP's on this machine (the event loop, the
sockets, handing each read to a thread and back), not our framework's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

import orjson
from access_reads import profile_read, run
from http_load import http_reads, serve, story, with_writer
from machine import speed_line

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.dto import AddPrincipal, ReadProfile, RegisterCandidate

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def thin_server(store: Path, port: int, threads: int) -> None:
    """Serves GET /v1/candidates/{id}/profile and POST /v1/candidates until killed."""
    import uvicorn

    app = build_app(Settings(database_url=f"sqlite:///{store}", data_dir=store.parent))
    pool = ThreadPoolExecutor(threads)

    def read(token: str, candidate: str, purpose: str) -> bytes:
        who = app.authenticate(token)
        asked = ReadProfile(
            candidate_id=UUID(candidate), principal=who.principal, role=who.role, purpose=purpose
        )
        return app.read_profile(asked).model_dump_json().encode()

    def register(token: str, body: bytes) -> bytes:
        who = app.authenticate(token)
        asked = RegisterCandidate(name=orjson.loads(body)["name"], actor=who.principal)
        return app.register_candidate(asked).model_dump_json().encode()

    async def answer(send: Send, status: int, body: bytes) -> None:
        length = str(len(body)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        token = dict(scope["headers"])[b"authorization"].decode().removeprefix("Bearer ")
        loop = asyncio.get_running_loop()
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await answer(send, 201, await loop.run_in_executor(pool, register, token, body))
            return
        candidate = scope["path"].split("/")[3]
        purpose = parse_qs(scope["query_string"].decode())["purpose"][0]
        await answer(send, 200, await loop.run_in_executor(pool, read, token, candidate, purpose))

    uvicorn.run(
        asgi,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


def start_thin(store: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [sys.executable, __file__, "--serve", str(store), str(port), str(threads)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None:
                raise SystemExit("the thin server exited") from None
            time.sleep(0.1)
    raise SystemExit("the thin server did not start")


def over_http(
    start: Callable[[], tuple[subprocess.Popen[bytes], str]],
    token: str,
    clients: int,
    picks: list[UUID],
    per_second: float,
    tag: str,
) -> float:
    process, base = start()
    try:
        http_reads(base, token, 1, picks[:20])  # warm: connections, caches
        return http_reads(base, token, clients, picks, per_second, tag)[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--commands", type=float, default=40, help="commands a second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=3, metavar=("STORE", "PORT", "THREADS"))
    args = parser.parse_args()
    if args.serve:
        thin_server(Path(args.serve[0]), int(args.serve[1]), int(args.serve[2]))
        return
    print(f"audited profile reads, {args.clients} clients, {args.commands:g} commands a second")
    print(f"  machine: {speed_line()}", flush=True)
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="http-floor-") as tmp:  # removed afterwards
        work = Path(tmp)
        store = work / "store.sqlite"
        settings = Settings(database_url=f"sqlite:///{store}", data_dir=work)
        app = build_app(settings)
        ids = [story.consented_candidate(app, f"Candidate {i}").candidate_id for i in range(50)]
        recruiter = AddPrincipal(name=story.RECRUITER, role=Role.RECRUITER, actor="bench")
        token = app.add_principal(recruiter).token
        app.close()
        picks = [rng.choice(ids) for _ in range(args.reads)]

        def in_process(n: int) -> float:
            ours = build_app(settings)
            try:
                read = profile_read(ours)
                read(picks[0])

                def register(i: int) -> object:
                    command = RegisterCandidate(name=f"New {n}.{i}", actor=story.RECRUITER)
                    return ours.register_candidate(command)

                return with_writer(register, lambda: run(args.clients, picks, read), args.commands)[
                    0
                ]
            finally:
                ours.close()

        sides: dict[str, Callable[[int], float]] = {
            "in process": in_process,
            "thin HTTP": lambda n: over_http(
                lambda: start_thin(store, args.clients),
                token,
                args.clients,
                picks,
                args.commands,
                f"t{n}",
            ),
            "backcheck serve": lambda n: over_http(
                lambda: serve(settings), token, args.clients, picks, args.commands, f"o{n}"
            ),
        }
        got: dict[str, list[float]] = {name: [] for name in sides}
        for n in range(args.rounds):
            for name in list(sides) if n % 2 == 0 else list(reversed(sides)):
                got[name].append(sides[name](n))
            base = got["in process"][-1]
            print(
                f"  round {n + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s ({v[-1] / base:.2f})" for k, v in got.items()),
                flush=True,
            )
        for name in ("thin HTTP", "backcheck serve"):
            ratios = [a / b for a, b in zip(got[name], got["in process"], strict=True)]
            print(
                f"  {name}: {statistics.median(got[name]):,.0f} reads/s, the median of the rounds' "
                f"ratios to in process {statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
                f"max {max(ratios):.2f})",
                flush=True,
            )


if __name__ == "__main__":
    os.environ.pop("BACKCHECK_DATABASE_URL", None)
    main()
