"""The table's reads are found from the ASGI scope ahead of FastAPI's router, on both backends:
every one of them, and nothing else (infra/http/read_path.py)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from starlette.types import Receive, Scope, Send

from infra.http.read_path import ReadPaths
from infra.http.table import READS
from tests.http import Served, problem
from tests.story import PURPOSE, RECRUITER


def _read_paths(api: Served) -> ReadPaths:
    api.client.get("/")  # the middleware stack is built at the first request
    layer: Any = api.client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, ReadPaths):
        layer = layer.app
    return layer


def test_every_read_of_the_table_is_found_ahead_of_the_router(api: Served) -> None:
    found = _read_paths(api)

    assert [t.path for t in found.served] == [r.path for r in READS]


def test_a_read_never_reaches_the_router_and_everything_else_does(api: Served) -> None:
    found = _read_paths(api)
    router = found.app
    reached: list[str] = []

    async def spying(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await router(scope, receive, send)

    found.app = spying
    unknown = uuid4()
    read = api.get(RECRUITER, f"/v1/candidates/{unknown}/profile", purpose=PURPOSE)
    me = api.get(RECRUITER, "/v1/me")
    without_token = api.client.get(f"/v1/candidates/{unknown}/profile")

    problem(read, 404)
    assert me.status_code == 200
    problem(without_token, 401, "unauthenticated")
    assert reached == ["/v1/me"]
