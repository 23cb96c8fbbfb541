"""What the table's routes share (infra/http/routes.py, infra/http/read_routes.py): the
route class that serves them direct, the worker threads their work runs in, and the
parameters every endpoint's signature starts with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute

from infra.http.auth import Authenticator
from infra.http.workers import Workers
from services.application import Backcheck

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
# Threads a request's work runs in (its token checked, its use case run): enough for the
# reads of many connections to be recorded in one group commit.
WORKER_THREADS = 32


def etag(version: int | None) -> str | None:
    return None if version is None else f'"{version}"'


Direct = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    """A route documented from its endpoint's signature (parameters, types, examples) but
    served by the endpoint's `direct` handler. A read's hands the path and query to the use
    case's DTO as they came: the DTO checks them (naming the field and the rule) as for any
    transport, so FastAPI's own per-parameter solving, a sixth of an audited read's time
    over HTTP, is not done first. A command's checks its caller's token before it parses
    anything of the request (infra/http/command_input.py): without a valid token it is a 401,
    whatever the body."""

    def get_route_handler(self) -> Direct:
        direct: Direct = getattr(self.endpoint, "direct")  # noqa: B009  (set by the Api)
        return direct


class Endpoints:
    """The table's routes on one application and authenticator, their work off the loop."""

    def __init__(self, application: Backcheck, authenticator: Authenticator) -> None:
        self.application = application
        self.authenticator = authenticator
        self.workers = Workers(WORKER_THREADS, "backcheck-http")

    async def offload(self, work: Callable[..., Response], *args: Any) -> Response:
        """`work(*args)` in a worker thread: the token's check and the use case in one hop
        off the event loop (infra/http/workers.py)."""
        response: Response = await self.workers.run(work, *args)
        return response

    def _caller_and_ids(self, ids: tuple[str, ...]) -> list[inspect.Parameter]:
        """What every endpoint takes first: the request, the caller's credential (checked in
        the worker thread, with the work), the path's ids."""
        return [
            inspect.Parameter("request", _POSITIONAL, annotation=Request),
            inspect.Parameter(
                "credential",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[str, Depends(self.authenticator.presented)],
            ),
            *[
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[UUID, Path()]
                )
                for name in ids
            ],
        ]
