"""The HTTP server's own health, readiness and metrics, on its own port beside the API.

`/healthz` answers while the server runs; `/readyz` checks the store answers (and, on
PostgreSQL, that the breaker is closed: `infra/http/breaker.py`) and is still bound to the
master key the server holds; `/metrics` is the process's
Prometheus metrics (`infra/ops/metrics.py`): the read decisions it made, the chain
verifications it ran, the age of the newest kept checkpoint. The same checks and bodies as
every other process's (`infra/ops/health.py`). No lag bound: the read views are brought up
to date before each read (docs/decisions/0011), so a served read is never behind the log.
None of these paths is in the OpenAPI document, none needs a token, and none says anything
about anyone's data.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.config import Settings
from infra.ops import metrics
from infra.ops.health import Check, master_key_check, readiness, settings_store_check
from services.application import Backcheck

if TYPE_CHECKING:
    from infra.http.breaker import StoreBreaker


def install_health(
    app: FastAPI,
    application: Backcheck,
    settings: Settings | None,
    breaker: StoreBreaker | None,
) -> None:
    checks: dict[str, Check] = {}
    if settings is not None:
        checks["store"] = settings_store_check(settings)
        metrics.watch_checkpoints(settings.checkpoints_dir, time.time)
    else:

        def store() -> str | None:
            application.recorder.max_notification_id()
            return None

        checks["store"] = store
    if breaker is not None:
        checks["breaker"] = lambda: breaker.reason
    if (master_key := master_key_check(application.keys, checks["store"])) is not None:
        checks["master_key"] = master_key

    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def readyz() -> JSONResponse:
        ready, found = readiness(checks)
        return JSONResponse({"ready": ready, "checks": found}, status_code=200 if ready else 503)

    def metrics_() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for path, answer in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics_)):
        app.add_api_route(path, answer, methods=["GET"], include_in_schema=False)
