"""The table's reads found from the ASGI scope, ahead of FastAPI's router.

An audited read over HTTP cost more in the framework than in the read: FastAPI's router tried
the routes' patterns one after another, then its handler wrapped the request in an exit stack
and the exception middleware's machinery, before the read's own handler ran. Every read of the
table (infra/http/table.py) is a GET on a path of fixed words and ids, so it is found here by
its segments and handed to the handler its DirectRoute serves (infra/http/read_routes.py): the same
code, with the path's ids as they came (the read's DTO checks them and names the field).

Everything else goes on to FastAPI as before, and so does any read whose paths some route
registered before it could also answer (the router would have chosen that one). This sits
behind the middleware that gates every request (the portal's header check, the body limit,
the store breaker), which see every request as before; the answers FastAPI's exception
handlers give to a caller who is not identified (401) or could not be checked (503) are given
here the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request, Response
from starlette._utils import get_route_path
from starlette.convertors import PathConvertor
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.http.auth import Unanswerable, Unauthenticated, unauthenticated
from infra.http.problems import error_response

# A read's handler: the request and the path's ids by name (set by the Api on its endpoint).
ReadHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]
Shape = tuple[str | None, ...]  # a path's segments after the first "/": a word, or None for an id


def shape(path: str) -> Shape:
    """`/v1/candidates/{candidate_id}/profile` -> ("v1", "candidates", None, "profile")."""
    return tuple(None if "{" in part else part for part in path.split("/")[1:])


def could_answer(route: BaseRoute, read: Shape) -> bool:
    """Whether `route` could answer a GET on some path of the shape `read`: a route of
    Starlette's that takes GET, whose words and ids line up with it (an id matches any
    word); a mount or a route of another kind, whatever it is, is taken to."""
    if isinstance(route, WebSocketRoute):
        return False
    if not isinstance(route, Route):
        return True
    if route.methods is not None and "GET" not in route.methods:
        return False
    if any(isinstance(c, PathConvertor) for c in route.param_convertors.values()):
        return True  # its id may span segments
    theirs = shape(route.path)
    return len(theirs) == len(read) and all(
        a is None or b is None or a == b for a, b in zip(theirs, read, strict=True)
    )


@dataclass(frozen=True)
class ReadTemplate:
    path: str
    words: Shape
    names: tuple[str, ...]  # the ids' names, in the path's order
    handler: ReadHandler

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The ids of `parts` (a path split at "/", its leading "" dropped), if it is this
        read's path: each word the same, each id a non-empty segment."""
        ids: list[str] = []
        for word, part in zip(self.words, parts, strict=True):
            if word is None:
                if not part:
                    return None
                ids.append(part)
            elif word != part:
                return None
        return dict(zip(self.names, ids, strict=True))


def templates(routes: Sequence[BaseRoute]) -> list[ReadTemplate]:
    """The reads (routes whose endpoint carries a `read` handler) that no earlier route
    could answer for, in the router's order."""
    found: list[ReadTemplate] = []
    for i, route in enumerate(routes):
        handler = getattr(getattr(route, "endpoint", None), "read", None)
        if handler is None or not isinstance(route, Route):
            continue
        if route.methods != {"GET"}:
            continue
        words = shape(route.path)
        if any(could_answer(earlier, words) for earlier in routes[:i]):
            continue
        names = tuple(route.param_convertors)
        if len(names) != sum(w is None for w in words):
            continue  # an id inside a word: left to the router
        found.append(ReadTemplate(route.path, words, names, handler))
    return found


class ReadPaths:
    """ASGI middleware: a GET on one of the table's reads is served by its handler, found by
    the path's segment count and words; any other request goes on to `app`."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        # built when the middleware stack is, at the first request: every route is there
        self.served = templates(routes)
        self._by_length: dict[int, list[ReadTemplate]] = {}
        for template in self.served:
            self._by_length.setdefault(len(template.words), []).append(template)

    def find(self, path: str) -> tuple[ReadTemplate, dict[str, str]] | None:
        parts = path.split("/")
        if parts[0]:
            return None
        del parts[0]
        for template in self._by_length.get(len(parts), ()):
            ids = template.match(parts)
            if ids is not None:
                return template, ids
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            self.find(get_route_path(scope))
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        template, ids = found
        request = Request(scope, receive)
        response: Response
        try:
            response = await template.handler(request, ids)
        except Unauthenticated as e:
            response = unauthenticated(request, e)
        except Unanswerable as e:
            response = error_response(request, e.error)
        await response(scope, receive, send)
