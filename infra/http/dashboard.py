"""The dashboard over HTTP: its summary, the same live, the refused reads behind a bar, and
the page that shows them.

    GET /v1/dashboard/summary      the summary (services/dashboard.py) as JSON; staff only
    GET /v1/dashboard/stream       text/event-stream: a `summary` event at once, then one each
                                   time the log's head moves; a comment every 15 s otherwise
    GET /v1/dashboard/refusals     the refused reads of a day (by principal, by policy), a page
                                   at a time; compliance only
    GET /dashboard                 the page (and its script and style sheet): no build step,
                                   nothing from another host (infra/http/static/)

Who may see what is the use cases' rule (services/refusals.py); the role comes from the
verified credential alone. The stream is in the OpenAPI document like the rest, but it does
not end: what walks the document calling each operation (schemathesis, the no-leak walk)
leaves it out, and tests/integration/test_dashboard_http.py reads it over a real connection.
It re-checks the credential every heartbeat and ends when it no longer signs in; at most
`max_streams` are open at once, the next is refused with a 503 problem.

The page sends the token as a Bearer header on every request, the stream's too: it reads the
stream with fetch() rather than EventSource (which cannot send a header), so there is no
second credential (no cookie a form on another site could ride on) and no token in a URL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date
from importlib.resources import files
from typing import Annotated, Any

import orjson
from anyio import to_thread
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from infra.audit.health import chain_health
from infra.config import Settings
from infra.http.auth import Authenticator, Unauthenticated, checked_first
from infra.http.head import is_head
from infra.http.problems import PROBLEM_JSON, error_problem, error_response, problem_response
from infra.http.routes import PROBLEMS
from services.application import Backcheck
from services.dashboard import ChainHealth, DashboardSummary
from services.identity import Identity
from services.lists import MAX_CURSOR, MAX_LIMIT
from services.refusals import (
    MAX_POLICY,
    NO_POLICY,
    RefusalPage,
    RefusedReads,
    check_dashboard,
    check_drill_down,
)

TAG = "dashboard"
MAX_STREAMS = 8  # each holds a connection and polls the log's head once a second
MAX_STREAMS_EACH = 2  # of them, one principal's (a page open in two tabs)
# The pages load their script and styles from here, and nothing from anywhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
STATIC = {  # what the page is made of: name -> media type
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_REFUSED = {"content": {PROBLEM_JSON: {}}, "description": "a problem (RFC 9457)"}
STREAM = (
    "text/event-stream (an endless one): a `summary` event at once (`id:` the log's head, "
    "`data:` the summary as one line of JSON), another each time the head moves, a "
    "`: heartbeat` comment every 15 s otherwise; `signed-out` ends it when the token no "
    "longer signs in, `stopping` when the server stops, `problem` (`data:` the problem+json "
    "the route would have answered, e.g. `views-failed`, `store-busy`) when the summary can "
    "no longer be made"
)
SAMPLE = 'id: 4812\nevent: summary\ndata: {"pipeline": {...}, "lag": {"head": 4812, ...}}\n\n'


def _static(name: str) -> bytes:
    return files("infra.http").joinpath("static", name).read_bytes()


def event(kind: str, data: str, ident: int | None = None) -> bytes:
    """One server-sent event; `data` is one line of JSON."""
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


class EventStream(StreamingResponse):
    """A stream that gives its slot back however it ends: finished, cancelled, or never
    started (the client gone before the first byte)."""

    media_type = "text/event-stream"  # what the OpenAPI document says the route answers

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        super().__init__(content, headers=headers, media_type="text/event-stream")
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


class Streams:
    """How many streams are open, never more than `limit`, and never more than `each` of them
    one principal's: one principal's tabs cannot take every slot from the others."""

    def __init__(self, limit: int, each: int = MAX_STREAMS_EACH) -> None:
        self.limit = limit
        self.each = each
        self.open = 0
        self._mine: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, principal: str) -> Callable[[], None] | str:
        """A slot, and how to give it back (once); or why there is none."""
        with self._lock:
            if self._mine.get(principal, 0) >= self.each:
                return (
                    f"{principal} has {self.each} dashboard streams open, the most one "
                    "principal may hold; close one (another tab?)"
                )
            if self.open >= self.limit:
                return f"{self.limit} dashboard streams are open, the most this server keeps"
            self.open += 1
            self._mine[principal] = self._mine.get(principal, 0) + 1
        given_back = threading.Event()

        def release() -> None:
            with self._lock:
                if not given_back.is_set():
                    given_back.set()
                    self.open -= 1
                    left = self._mine[principal] - 1
                    if left:
                        self._mine[principal] = left
                    else:
                        del self._mine[principal]

        return release


def install(
    app: FastAPI,
    application: Backcheck,
    authenticator: Authenticator,
    *,
    settings: Settings | None = None,
    poll_seconds: float = 1.0,
    heartbeat_seconds: float = 15.0,
    max_streams: int = MAX_STREAMS,
) -> Streams:
    """The dashboard's routes and page on `app`; with `settings`, the chain's health from its
    kept checkpoints. Returns the streams' count (also `app.state.dashboard_streams`)."""
    signed_in = Depends(authenticator)
    streams = Streams(max_streams)

    def chain() -> ChainHealth | None:
        return chain_health(settings) if settings is not None else None

    def summary_for(identity: Identity) -> DashboardSummary:
        return application.dashboard_for(identity.role, chain(), identity)

    def summary(request: Request, identity: Identity = signed_in) -> Response:
        """The dashboard: the pipeline, checks, turnaround, consents, erasures, refused reads
        (by principal for compliance officers only), access outcomes, daily series, the
        chain's health and the projection's lag. Counts, ids and names of staff, never a
        personal value; for recruiters, investigators, reviewers and compliance officers.

        The same, live: `GET /v1/dashboard/stream` sends it as a `summary` event at once and
        again each time an event is committed."""
        try:
            found = summary_for(identity)
        except Exception as e:
            return error_response(request, e)
        return Response(
            found.model_dump_json(), 200, {"Cache-Control": "no-store"}, "application/json"
        )

    async def stream(request: Request, identity: Identity = signed_in) -> Response:
        credential = authenticator.credential(request)  # checked by the route: kept to recheck
        try:
            first = await to_thread.run_sync(summary_for, identity)
        except Exception as e:
            return error_response(request, e)
        release = streams.take(identity.principal)
        if isinstance(release, str):
            return problem_response(
                503,
                "Too many dashboard streams",
                "too-many-streams",
                f"{release}; try again shortly, or read GET /v1/dashboard/summary",
                request,
                {"Retry-After": "15"},
            )
        if is_head(request.scope):  # the GET's status and headers; no event, no slot held
            release()
            return EventStream(_nothing(), lambda: None)
        return EventStream(_events(request, credential, identity, first), release)

    async def _events(
        request: Request, credential: str, identity: Identity, first: DashboardSummary
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        state = request.app.state
        sent = first.lag.head
        yield event("summary", first.model_dump_json(), sent)
        quiet_since = loop.time()
        # Ended from outside when the client goes: Starlette cancels it on the server's
        # `http.disconnect` (or, on servers that send none, when a write fails: at the latest
        # at the next heartbeat). Asking `request.is_disconnected()` here as well would race
        # it for the connection's messages.
        while True:
            await asyncio.sleep(poll_seconds)
            # the server stopping (`backcheck serve` sets `state.server`): a stream would keep
            # it waiting for this connection to end, so it ends first
            if getattr(getattr(state, "server", None), "should_exit", False):
                yield event("stopping", _json({"detail": "the server is stopping"}))
                return
            found: DashboardSummary | None = None
            again: Identity | None = None
            try:
                head = await to_thread.run_sync(application.recorder.max_notification_id)
                if (head or 0) != sent:
                    found = await to_thread.run_sync(summary_for, identity)
                elif loop.time() - quiet_since >= heartbeat_seconds:
                    # a revoked or expired credential ends the stream
                    again = await to_thread.run_sync(authenticator.identify, credential)
            except Unauthenticated as e:
                yield event("signed-out", _json({"detail": e.detail}))
                return
            except Exception as e:
                # what the route would have answered (the views failed, the store busy or
                # away), sent as the stream's last event; the server's own logged in one line
                told = error_problem(request, e, answered="ended its stream with")
                yield event("problem", _json(told.body))
                return
            if found is not None:
                sent = found.lag.head
                yield event("summary", found.model_dump_json(), sent)
                quiet_since = loop.time()
            elif again is not None:
                if again.role is not identity.role:
                    yield event("signed-out", _json({"detail": "the credential's role changed"}))
                    return
                yield b": heartbeat\n\n"
                quiet_since = loop.time()

    def refusals(
        request: Request,
        day: Annotated[
            date, Query(description="the day (UTC) of a bar of refusals", examples=["2026-03-02"])
        ],
        principal: Annotated[
            str | None,
            Query(max_length=120, description="only this principal's", examples=["growth:ana"]),
        ] = None,
        policy: Annotated[
            str | None,
            Query(
                max_length=MAX_POLICY,
                description=f"only those this policy decided (`{NO_POLICY}`: those none did)",
                examples=["candidate-reads-own-data"],
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR, description="the `next_cursor` of the page before"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
        identity: Identity = signed_in,
    ) -> Response:
        """The refused reads behind a bar of the dashboard: those of `day`, of `principal`
        and decided by `policy` when given, oldest first. Each names when, who (principal,
        role, how signed in), why (purpose), which view of which candidate (by id), the
        categories refused and the deciding policies: never a personal value. Compliance
        officers not scoped to some candidates only (each read names its candidate, across the
        store: a scoped token is refused it, 403 `outside-assignments`); nothing is recorded
        (nothing personal is read)."""
        try:
            page = application.refused_reads(
                RefusedReads(
                    day=day, principal=principal, policy=policy, cursor=cursor, limit=limit
                ),
                identity.role,
                identity,
            )
        except Exception as e:
            return error_response(request, e)
        headers = {"Cache-Control": "no-store"}
        if page.next_cursor is not None:
            following = request.url.include_query_params(cursor=page.next_cursor)
            # a reference relative to the request (RFC 8288, 3986): not the URL the Host
            # header names, which the client chooses
            headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        return Response(page.model_dump_json(), 200, headers, media_type="application/json")

    staff = checked_first(authenticator, lambda identity: check_dashboard(identity.role))
    app.router.add_api_route(
        "/v1/dashboard/summary",
        summary,
        route_class_override=staff,
        methods=["GET"],
        tags=[TAG],
        response_model=DashboardSummary,
        responses={s: PROBLEMS[s] for s in (401, 403, 422, 503)},
        summary="the dashboard's numbers",
    )
    app.router.add_api_route(
        "/v1/dashboard/stream",
        stream,
        route_class_override=staff,
        response_class=EventStream,
        status_code=200,
        methods=["GET"],
        tags=[TAG],
        responses={
            200: {"description": STREAM, "content": {"text/event-stream": {"example": SAMPLE}}},
            401: PROBLEMS[401],
            403: {**_REFUSED, "description": "a problem (RFC 9457): not staff"},
            422: PROBLEMS[422],
            503: {
                **_REFUSED,
                "description": "a problem (RFC 9457): `too-many-streams`, or "
                "the store away; `Retry-After`",
            },
        },
        summary="the dashboard's numbers, live (server-sent events)",
        description="The summary of `GET /v1/dashboard/summary`, sent again whenever an event "
        "is committed, for as long as the connection stays open. Read it with `fetch()`: "
        f"`EventSource` cannot send the bearer token. At most {max_streams} streams are open "
        f"at once, {MAX_STREAMS_EACH} of them one principal's: the next is 503 "
        "`too-many-streams` with `Retry-After`. A `HEAD` answers the headers and opens none.",
    )
    app.router.add_api_route(
        "/v1/dashboard/refusals",
        refusals,
        route_class_override=checked_first(
            authenticator, lambda identity: check_drill_down(identity.role, identity)
        ),
        methods=["GET"],
        tags=[TAG],
        response_model=RefusalPage,
        responses={401: _REFUSED, 403: _REFUSED, 422: _REFUSED, 503: _REFUSED},
        summary="the refused reads behind a bar of the dashboard",
    )
    _pages(app)
    app.state.dashboard_streams = streams
    return streams


def _pages(app: FastAPI) -> None:
    """The page, its script and its style sheet, read once from the package."""
    kept = {name: _static(name) for name in STATIC}

    def page(name: str) -> Callable[[], Response]:
        def serve() -> Response:
            return Response(kept[name], 200, PAGE_HEADERS, STATIC[name])

        return serve

    app.add_api_route(
        "/dashboard", page("dashboard.html"), methods=["GET"], include_in_schema=False
    )
    for name in STATIC:
        app.add_api_route(
            f"/dashboard/{name}", page(name), methods=["GET"], include_in_schema=False
        )


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that ends at once


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
