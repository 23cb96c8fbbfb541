"""A bound on every request body: larger ones are refused with 413 before they are read whole."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http.problems import PROBLEM_JSON

DEFAULT_MAX_BODY = 1_048_576  # 1 MiB, as for a command read from a file (infra/inputs.py)


class BodyTooLarge(Exception):  # noqa: N818  (caught below, answered as 413)
    pass


class BodyLimit:
    """Refuses a body over `limit` bytes: by its Content-Length at once, or while it streams."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, send)
            return
        if b"transfer-encoding" not in headers and (declared is None or declared == b"0"):
            await self.app(scope, receive, send)  # no body (RFC 9112 6.3): nothing to bound
            return
        seen = 0
        started = False

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded, tracking)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body: dict[str, Any] = {
            "type": "tag:backcheck.invalid,2026:problems/body-too-large",
            "title": "Body too large",
            "status": 413,
            "detail": f"the request body is over {self.limit:,} bytes (or its Content-Length "
            "is not a number); nothing was read or recorded",
            "instance": scope.get("path", ""),
        }
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
