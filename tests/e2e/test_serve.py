"""`backcheck serve` as a user runs it: a real uvicorn process on loopback, on SQLite and on
PostgreSQL. `--demo` seeds the story and prints tokens to look at it with; those tokens work
over real HTTP; SIGTERM stops it at once with exit 0 and no traceback; a port in use is one
line and exit 69."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.config import Settings
from infra.problem import EX_UNAVAILABLE
from tests.e2e.test_cli import BACKCHECK

STARTS_WITHIN = 90.0  # the demo story is told first


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["BACKCHECK_DATABASE_URL"] = settings.database_url
    env["COLUMNS"] = "300"
    return env


class Server:
    def __init__(self, settings: Settings, *args: str, log: Path) -> None:
        self.log = log
        self.out = log.with_suffix(".out")
        with log.open("wb") as err, self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [*BACKCHECK, "serve", "--port", "0", *args],
                env=environment(settings),
                stdout=out,
                stderr=err,
            )
        self.base = self._wait_for_banner()

    def _wait_for_banner(self) -> str:
        deadline = time.monotonic() + STARTS_WITHIN
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://\S+)", self.out.read_text())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                pytest.fail(f"serve exited {self.process.returncode}: {self.log.read_text()}")
            time.sleep(0.2)
        pytest.fail("serve printed no URL in time")

    def tokens(self) -> dict[str, str]:
        """The tokens the banner shows, once it has printed its last line (the URL comes
        first: read at once, the file may still hold only part of the tokens)."""
        deadline = time.monotonic() + STARTS_WITHIN
        while "each shown this once" not in (text := self.out.read_text()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"serve printed no whole banner: {text}")
            time.sleep(0.1)
        return dict(re.findall(r"token of (\S+): (bck_\S+)", text))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


def test_serve_demo_answers_over_http_and_stops_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    server = Server(settings, "--demo", log=tmp_path / "serve.log")
    try:
        tokens = server.tokens()
        assert set(tokens) >= {"compliance:demo", "hr:demo"}
        portal = [name for name in tokens if name.startswith("candidate:")]
        assert len(portal) == 1
        with httpx.Client(base_url=server.base, timeout=30) as client:
            me = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['hr:demo']}"})
            assert me.status_code == 200, me.text
            assert me.json()["role"] == "recruiter"
            candidate = portal[0].removeprefix("candidate:")
            log = client.get(
                f"/v1/candidates/{candidate}/access-log",
                params={"purpose": "see who read my data"},
                headers={"Authorization": f"Bearer {tokens[portal[0]]}"},
            )
            assert log.status_code == 200, log.text
            assert log.json()["entries"], "the demo's reads of her data are in her log"
            bare = client.get("/v1/me")
            assert bare.status_code == 401
            assert bare.headers["content-type"] == "application/problem+json"
            link = re.search(r"portal link of (\S+): (http\S+)", server.out.read_text())
            assert link is not None
            assert link.group(2) == f"{server.base}/portal#token={tokens[portal[0]]}"
            # the links the story's consent requests sent open this server too, not the
            # default's port 8000 (no BACKCHECK_PUBLIC_URL is set)
            sent = [json.loads(f.read_text())["url"] for f in settings.outbox_dir.rglob("*.json")]
            assert sent, "the demo asks consents: their links are in the outbox"
            assert all(url.startswith(f"{server.base}/portal#token=") for url in sent), sent
            page = client.get("/portal")  # the fragment stays in the browser
            assert page.status_code == 200
            assert "default-src 'self'" in page.headers["content-security-policy"]
            spec = client.get("/openapi.json")
            assert spec.status_code == 200
            assert "/v1/candidates/{candidate_id}/profile" in spec.json()["paths"]
            banner = server.out.read_text()
            told = re.search(r"demo story run on the store: (\d+) steps, (\d+) of them", banner)
            assert told is not None, banner
            assert int(told.group(1)) > int(told.group(2)) > 0
            # every address the banner gives a newcomer to open is there (the one needing a
            # token says so: 401), none a 404; portal links are checked above
            shown = {
                url
                for line in banner.splitlines()
                if "portal link" not in line
                for url in re.findall(r"http://\S+", line)
            } - {server.base}
            assert len(shown) >= 7, banner
            for url in sorted(shown):
                answer = client.get(url)
                assert answer.status_code in (200, 401), (url, answer.status_code)
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()
    assert "Traceback" not in server.log.read_text()


def test_a_port_in_use_is_one_line_and_exit_69(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*BACKCHECK, "serve", "--port", str(port)],
            env=environment(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == EX_UNAVAILABLE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"not serving: cannot serve on 127.0.0.1:{port}")


def test_sigterm_stops_the_server_while_a_dashboard_stream_is_open(
    settings: Settings, tmp_path: Path
) -> None:
    server = Server(settings, "--demo", log=tmp_path / "serve.log")
    received: list[bytes] = []
    try:
        token = server.tokens()["compliance:demo"]
        opened = threading.Event()

        def follow() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with (
                httpx.Client(base_url=server.base, timeout=60) as client,
                client.stream("GET", "/v1/dashboard/stream", headers=headers) as answer,
            ):
                for chunk in answer.iter_bytes():
                    received.append(chunk)
                    opened.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert opened.wait(30), "the stream sent its first summary"
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=20)
        took = time.monotonic() - started
        reader.join(timeout=10)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert code == 0, server.log.read_text()
    assert took < 8, f"stopped {took:.1f} s after SIGTERM: the stream held it up"
    assert b"event: stopping" in b"".join(received)
    assert "Traceback" not in server.log.read_text()
