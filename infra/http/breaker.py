"""When PostgreSQL goes away, the API says so at once instead of making every caller wait.

The store's library retries a lost connection for some twenty seconds before it gives up. The
first request to meet the outage pays that; it trips this breaker, and from then on every
`/v1` request is answered 503 (`store-unreachable`, `Retry-After`) without touching the store,
while a probe connects to the server once a second. When the server answers, the breaker
closes and requests go through again. On SQLite there is no server to lose: no breaker.
"""

from __future__ import annotations

import threading
import time

import psycopg
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.http.problems import problem_response
from infra.problem import problem_for
from infra.store.server import StoreUnreachableError, check_server

PROBE_EVERY = 1.0  # seconds between attempts to reach the server while it is away


class StoreBreaker:
    def __init__(self, conninfo: str, where: str) -> None:
        self.conninfo = conninfo
        self.where = where
        self.reason: str | None = None  # set while the store is away
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.reason is not None

    def saw(self, error: Exception) -> None:
        """An error a request met: if it says the server is gone, trip (once)."""
        problem = problem_for(error)
        if problem is None or problem.type != "store-unreachable":
            return
        with self._lock:
            if self.reason is not None:
                return
            self.reason = problem.detail
        threading.Thread(target=self._probe, name="store-probe", daemon=True).start()

    def _probe(self) -> None:
        while True:
            time.sleep(PROBE_EVERY)
            try:
                check_server(self.conninfo, self.where)
            except (StoreUnreachableError, psycopg.Error):
                continue
            except Exception:  # the server answered, if only to refuse: it is back
                pass
            self.reason = None
            return


class BreakerGate:
    """Answers `/v1` requests 503 at once while the breaker is open."""

    def __init__(self, app: ASGIApp, breaker: StoreBreaker) -> None:
        self.app = app
        self.breaker = breaker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = self.breaker.reason
        if reason is None or scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            503,
            "Store unreachable",
            "store-unreachable",
            f"{reason}; answered without trying while the server is away (it is tried again "
            "every second)",
            headers={"Retry-After": "5"},
            instance=scope["path"],
        )
        await response(scope, receive, send)
