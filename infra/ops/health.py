"""Health, readiness and metrics of a process that is not the HTTP server, on a port of its own.

A process calls `serve_health(port, checks)` once it runs, and `close()` when it stops. It
answers, from a thread of its own (the standard library's HTTP server: nothing to install,
and the process's own loop, faust's or the relay's, is never held by a scrape):

- `GET /healthz`: 200 `{"status": "ok"}` while the process runs (liveness: a process that
  cannot answer this is to be restarted);
- `GET /readyz`: 200 when every check passes, else 503; the body names each check and, for
  one that fails, why (`{"ready": false, "checks": {"store": "…does not answer…"}}`);
- `GET /metrics`: the process's Prometheus metrics (`infra/ops/metrics.py`).

A check is a function returning None when all is well, or one line saying what is wrong; one
that raises fails with the exception's text. Checks run when asked, each bounded by its own
timeout (a store connect timeout, a broker socket timeout): a probe never hangs. Here are
the usual ones (the store reachable, its master key the one this process holds, the broker
reachable, lag under a bound); the
HTTP server answers the same paths with the same `readiness` (`infra/http/app.py`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.config import Settings
from infra.config.process import HEALTH_HOST

Check = Callable[[], str | None]

log = logging.getLogger("backcheck.health")


def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """(whether every check passes, each check's "ok" or why not)."""
    found: dict[str, str] = {}
    for name, check in checks.items():
        try:
            problem = check()
        except Exception as e:  # a check that cannot tell is a check that fails
            problem = f"{type(e).__name__}: {e}"
        found[name] = "ok" if problem is None else problem[:500]
    return all(v == "ok" for v in found.values()), found


def store_check(backend: str, conninfo: str, sqlite_path: Path | None, where: str) -> Check:
    """The event store answers: PostgreSQL accepts a connection (within the settings'
    connect timeout), or the SQLite file opens and answers a query."""

    def check() -> str | None:
        if backend == "postgres":
            from infra.store.server import StoreUnavailableError, check_server

            try:
                check_server(conninfo, where)
            except StoreUnavailableError as e:
                return str(e)
            return None
        if sqlite_path is None or not sqlite_path.exists():
            return f"{where}: no store file"
        connection = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, timeout=2)
        try:
            connection.execute("SELECT 1").fetchone()
        finally:
            connection.close()
        return None

    return check


def settings_store_check(settings: Settings) -> Check:
    """`store_check` of the configured store."""
    postgres = settings.backend == "postgres"
    return store_check(
        settings.backend,
        settings.postgres_conninfo() if postgres else "",
        None if postgres else settings.sqlite_path,
        settings.describe(),
    )


def master_key_check(keys: object, store: Check) -> Check | None:
    """The store still bound to the master key this process holds (`keys`: the application's
    key store; None when it has none of its own to check). Asked only once `store` passes: a
    pool waiting for a server that is away would hold the probe."""
    from infra.privacy.keystore import SQLKeyStore
    from infra.privacy.rotation import master_key_problem

    if not isinstance(keys, SQLKeyStore):
        return None

    def check() -> str | None:
        if store() is not None:
            return "not checked: the store does not answer"
        return master_key_problem(keys)

    return check


def lag_check(lag: Callable[[], int], bound: int, what: str) -> Check:
    """`what` (e.g. "relay lag") at most `bound` events; a bound of 0 checks nothing."""

    def check() -> str | None:
        if bound <= 0:
            return None
        found = lag()
        return None if found <= bound else f"{what} is {found} events, over the bound of {bound}"

    return check


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on `host:port`, answered from a daemon thread."""

    def __init__(self, port: int, checks: Mapping[str, Check], host: str = HEALTH_HOST) -> None:
        self.checks = dict(checks)
        handler = _handler(self.checks)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_health(
    port: int | None, checks: Mapping[str, Check], host: str = HEALTH_HOST
) -> HealthServer | None:
    """The health server on `host:port` (BACKCHECK_HEALTH_HOST: this machine alone unless
    set; a health port says what the process reads and how far behind it is); None (nothing
    served) when `port` is None."""
    if port is None:
        return None
    try:
        served = HealthServer(port, checks, host)
    except OSError as e:
        from infra.http.errors import PortUnavailableError

        raise PortUnavailableError(
            f"--health-port: cannot serve health on {host}:{port}: {e.strerror or e}"
        ) from None
    log.info("health on http://%s:%d (/healthz, /readyz, /metrics)", host, served.port)
    return served


def _handler(checks: Mapping[str, Check]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "backcheck-health"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "application/json", b'{"status":"ok"}')
            elif path == "/readyz":
                ready, found = readiness(checks)
                body = json.dumps({"ready": ready, "checks": found}).encode()
                self._send(200 if ready else 503, "application/json", body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._send(404, "application/json", b'{"error":"not found"}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not logged (one every few seconds would drown the log)."""

    return Handler
