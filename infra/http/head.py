"""HEAD on every route that takes GET: answered as the GET is, without its body (RFC 9110
9.3.2).

The request goes on as that GET — found by the same route, its caller authenticated, its
query checked, its read decided — and the answer's body is dropped on the way out; its status
and headers (`ETag`, `Content-Type`, the GET's `Content-Length`) are the GET's. A path no
route takes GET on answers 405, its `Allow` naming what the path takes
(infra/http/problems.py `_allowed`, where GET brings HEAD).

A read of personal data is recorded for a HEAD exactly as for its GET. The answer carries no
value, but it is not nothing: its status says whether the candidate exists and whether this
reader may read them, and its ETag how far their record has moved. An audit trail that left
those answers out would miss reads that told the reader something. Recorded as the read they
ran, they name the categories the GET would have returned (the server decided and opened
them) though the body carrying them was left behind: the trail errs on the side of more,
never less. So HEAD is neither a free look nor refused: it is the GET, recorded, with the
body dropped.

Outermost of the middleware: everything inside (the portal's header check, the body limit,
the store breaker, the table's read paths) sees a GET. The server keeps the request's own
scope, so it still knows the answer to a HEAD has no body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Set in the GET's scope: its handler may answer a HEAD without doing all of a GET's work
# (the dashboard's stream takes no slot and sends no event).
HEAD = "backcheck.head"


def is_head(scope: Scope) -> bool:
    return bool(scope.get(HEAD))


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def bodiless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # a copy: the server's own scope still says HEAD
        await self.app({**scope, "method": "GET", HEAD: True}, receive, bodiless)
