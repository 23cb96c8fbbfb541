"""The candidate portal: a page the candidate opens from their link, and its session.

The link is `/portal#token=<portal link token>`: a fragment never reaches the server or its
logs (`?token=` works too). The page reads it, exchanges it for a session
(`POST /portal/session` with the token as bearer), and takes it out of the address bar. The
session is kept by the server (infra/http/sessions.py, decision 0040): the cookie holds a
random session id, never the token, and is `HttpOnly` (no script reads it), `SameSite=Strict`
(no other site's page sends it), `Secure` over https, expiring when the session must end: at
the link's expiry, or 8 hours after it opened (BACKCHECK_PORTAL_SESSION_LIMIT), whichever is
first. The server ends it sooner: 30 minutes after its last call
(BACKCHECK_PORTAL_SESSION_IDLE), or as soon as the link it was opened with no longer signs in
(revoked, replaced or expired: checked on every call). `DELETE /portal/session` deletes it,
so a copy of the cookie taken before signing out signs no one in after. The link itself opens
a new session as long as it is valid. Only a portal link opens a session: a staff or service
token is refused (403). Each session opened is on the record (decision 0049): an event of the
link's principal, when and until when, recorded before the cookie is given out, or the session
is ended again. Each sign-out too (decision 0050): recorded before the session is deleted and
the cookie cleared; one that cannot be recorded still ends the session. A session that ends
otherwise (unused, at its end, replaced by a new one in its browser) is recorded once found
ended, with when it ended (decision 0056): at the next call made with its cookie, at the next
sign-in of anyone, or as a new session replaces it (infra/http/sessions.py).

Cross-site requests: beside SameSite, every API call authenticated by the cookie, and every
session call (the sign-in, which brings no cookie, too), must carry `X-Backcheck-Portal: 1`,
a header a form or link on another site cannot send (and a script there could only with a
CORS preflight, which is never granted). Reads count too: each is a recorded event.

The page (infra/http/static/portal.*) is served with a `default-src 'self'` content security
policy: no inline script, nothing from another host, no build step; it calls the API's
routes like any client.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.http import subject
from infra.http.auth import (
    PORTAL_COOKIE,
    Authenticator,
    SessionCookie,
    Unanswerable,
    Unauthenticated,
)
from infra.http.link import PORTAL_PATH
from infra.http.problems import PROBLEM_JSON, error_response, problem_response
from infra.http.sessions import Ended
from services.access import Role
from services.application import Backcheck
from services.dto import (
    PortalSessionEnd,
    RecordPortalSessionEnds,
    RecordPortalSignIn,
    RecordPortalSignOut,
)
from services.identity import Authentication, acting_as
from services.principals import token_hash

PORTAL_HEADER = "X-Backcheck-Portal"
SESSION = "/portal/session"
CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ASSETS = {
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


# What the OpenAPI document says of the session's own routes (the page's are not in it).
PORTAL_PARAMETER = {
    "name": PORTAL_HEADER,
    "in": "header",
    "required": True,
    "description": "`1`: no form or link on another site can send it",
    "schema": {"type": "string", "enum": ["1"]},
}
COOKIE_SET = {
    "description": f"`{PORTAL_COOKIE}=<the link token>; HttpOnly; SameSite=Strict; Path=/`, "
    "`Max-Age` the link's time left, `Secure` over https",
    "schema": {"type": "string"},
}
COOKIE_CLEARED = {
    "description": f"`{PORTAL_COOKIE}` expired at once",
    "schema": {"type": "string"},
}


def _problem(when: str) -> dict[str, Any]:
    return {"content": {PROBLEM_JSON: {}}, "description": f"a problem (RFC 9457): {when}"}


def asset(name: str) -> bytes:
    return resources.files("infra.http").joinpath("static", name).read_bytes()


class PortalSession(BaseModel):
    principal: str
    candidate_id: str
    expires_at: datetime = Field(
        description="when the session ends at the latest: the link's expiry, or the longest "
        "a session lasts after it opened, whichever is first"
    )
    idle_seconds: int = Field(description="the session also ends this long after its last call")


class PortalRequestCheck:
    """Refuses (403) a cookie-authenticated API call, or a session call, without the portal's
    header: what another site's page could make a browser send with the cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _needs_header(scope: Scope) -> bool:
        path: str = scope["path"]
        if path.startswith(SESSION):
            return True
        if not path.startswith("/v1/"):
            return False
        names = {k.lower() for k, _ in scope["headers"]}
        if b"authorization" in names:
            return False  # a bearer token: no browser attaches one by itself
        cookies = b"; ".join(v for k, v in scope["headers"] if k.lower() == b"cookie")
        return f"{PORTAL_COOKIE}=".encode() in cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_header(scope):
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(PORTAL_HEADER.lower().encode())
        if sent == b"1":
            await self.app(scope, receive, send)
            return
        response = problem_response(
            403,
            "Portal header missing",
            "portal-header-missing",
            f"{_call(scope)} must send `{PORTAL_HEADER}: 1` (the portal page does); without "
            "it, it could have come from another site",
            Request(scope),  # its `instance`, as a route's problem has
        )
        await response(scope, receive, send)


def _call(scope: Scope) -> str:
    """What a request refused for want of the header did, in its refusal's words: a session
    call needs it whether or not a cookie came with it (the sign-in brings none)."""
    if not scope["path"].startswith(SESSION):
        return "a call made with the portal's session cookie"
    said = {"POST": "signing in to the portal", "DELETE": "signing out of the portal"}
    method: str = scope["method"]
    if method in said and scope["path"] == SESSION:
        return f"{said[method]} (`{method} {SESSION}`)"
    return f"a call to the portal's session (`{SESSION}`)"


def install(app: FastAPI, application: Backcheck, authenticator: Authenticator) -> None:
    """The portal's page, its assets and session, the header check, and the subject's own
    routes (infra/http/subject.py)."""
    subject.install(app, application, authenticator)
    app.add_middleware(PortalRequestCheck)

    def record_ended(ended: list[Ended]) -> None:
        """The ends of the portal sessions found ended, in one write (decision 0056): the
        server found them, under no one's identity; never a session's id."""
        application.record_portal_session_ends(
            RecordPortalSessionEnds(
                sessions=[
                    PortalSessionEnd(
                        candidate_id=UUID(e.session.candidate_id),
                        link_sha256=e.session.link_hash,
                        opened_at=e.session.opened_at,
                        last_call=e.session.last_seen,
                        ends_at=e.session.ends_at,
                        replaced_at=e.replaced_at,
                    )
                    for e in ended
                ],
                idle_seconds=max(1, int(authenticator.sessions.idle.total_seconds())),
            )
        )

    authenticator.sessions.record_ended = record_ended

    def page() -> Response:
        return Response(asset("portal.html"), 200, PAGE_HEADERS, media_type="text/html")

    def static(name: str, request: Request) -> Response:
        media = ASSETS.get(name)
        if media is None:
            return problem_response(404, "Not found", "not-found", "no such file", request)
        return Response(asset(name), 200, PAGE_HEADERS, media_type=media)

    def open_session(request: Request) -> Response:
        if "authorization" not in request.headers:
            raise Unauthenticated("send the portal link token as `Authorization: Bearer`", False)
        identity = authenticator.for_the_candidate(authenticator.credential(request))
        if identity.role is not Role.CANDIDATE or identity.authentication is not (
            Authentication.PORTAL
        ):
            return problem_response(
                403,
                "Not a portal link",
                "not-a-portal-link",
                "only a candidate's portal link opens a portal session; staff and services "
                "send their token as `Authorization: Bearer` to the API",
                request,
            )
        token = authenticator.credential(request)
        now = application.clock()
        if replaced := request.cookies.get(PORTAL_COOKIE):
            authenticator.sessions.replace(replaced, now)  # one browser, one session: a fresh id
        session_id, session = authenticator.sessions.open(
            identity.principal,
            ",".join(sorted(str(a) for a in identity.assignments)),
            token_hash(token),
            identity.expires_at,
            now,
        )
        try:  # on the record, or no session: a sign-in is a use of the link like any read
            with acting_as(identity):
                application.record_portal_sign_in(
                    RecordPortalSignIn(
                        candidate_id=UUID(session.candidate_id),
                        ends_at=session.ends_at,
                        actor=identity.principal,
                    )
                )
        except Exception as e:  # not recorded, so no session: the store's problem is the answer
            authenticator.sessions.end(session_id)
            return error_response(request, e)  # (a bug: 500, logged by it)
        except BaseException:
            authenticator.sessions.end(session_id)
            raise
        body = PortalSession(
            principal=session.principal,
            candidate_id=session.candidate_id,
            expires_at=session.ends_at,
            idle_seconds=int(authenticator.sessions.idle.total_seconds()),
        )
        response = Response(body.model_dump_json(), 200, {"Cache-Control": "no-store"})
        response.media_type = "application/json"
        response.headers["content-type"] = "application/json"
        response.set_cookie(
            PORTAL_COOKIE,
            session_id,
            max_age=max(0, int((session.ends_at - now).total_seconds())),
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def record_sign_out(session_id: str) -> None:
        """The sign-out on the record (decision 0050), when the cookie names a session that
        lasts and whose link still signs its candidate in; nothing for one that has ended,
        was never opened, or ended with its link (revoked, replaced, expired)."""
        session = authenticator.sessions.find(session_id, application.clock())
        if session is None:
            return
        try:
            identity = authenticator.identify(SessionCookie(session_id))
        except Unauthenticated:
            return  # its link no longer signs in: the session ended with it
        with acting_as(identity):
            application.record_portal_sign_out(
                RecordPortalSignOut(
                    candidate_id=UUID(session.candidate_id),
                    opened_at=session.opened_at,
                    actor=identity.principal,
                )
            )

    def close_session(request: Request) -> Response:
        """Signs out: the sign-out is recorded, then the session is deleted, so its id (the
        cookie, or a copy of it) signs no one in from now on; the browser is told to drop the
        cookie. A sign-out that cannot be recorded ends the session all the same (access is
        never kept for the sake of its record), and is answered with the store's problem."""
        response: Response = Response(status_code=204)
        if session_id := request.cookies.get(PORTAL_COOKIE):
            try:
                record_sign_out(session_id)
            except Unanswerable as e:  # who signs out could not be checked: the store's fault
                response = error_response(request, e.error)
            except Exception as e:  # not recorded: the store's problem (a bug: 500, logged)
                response = error_response(request, e)
            try:  # whether recorded or not: access is never kept for the sake of its record
                authenticator.sessions.end(session_id)
            except Exception as e:  # the sessions away too (on PostgreSQL, in the store)
                response = error_response(request, e)
        response.delete_cookie(
            PORTAL_COOKIE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    hidden: dict[str, Any] = {"include_in_schema": False}
    app.add_api_route(PORTAL_PATH, page, methods=["GET"], **hidden)
    app.add_api_route("/portal/static/{name}", static, methods=["GET"], **hidden)
    app.add_api_route(
        SESSION,
        open_session,
        methods=["POST"],
        tags=["session"],
        response_model=PortalSession,
        responses={
            200: {
                "description": "the session opened: who it signs in as, until when",
                "headers": {"Set-Cookie": COOKIE_SET},
            },
            401: _problem("no bearer token, or a link unknown, revoked or expired"),
            403: _problem("`not-a-portal-link`, or `portal-header-missing`"),
            503: _problem("the store could not be asked (`Retry-After`)"),
        },
        summary="open the candidate's portal session",
        description="Exchanges a candidate's portal link token, sent as `Authorization: "
        f"Bearer`, for the session cookie `{PORTAL_COOKIE}` (`HttpOnly`, `SameSite=Strict`, "
        "`Secure` over https, expiring with the link). Only a portal link opens one: a staff "
        "or service token is 403 `not-a-portal-link`. The link is checked on every call "
        "made with the cookie, so a revoked or expired link ends the session. Every call "
        f"made with the cookie, and this one, sends `{PORTAL_HEADER}: 1` (403 "
        "`portal-header-missing` otherwise).",
        openapi_extra={"parameters": [PORTAL_PARAMETER], "security": [{"bearer": []}]},
    )
    app.add_api_route(
        SESSION,
        close_session,
        methods=["DELETE"],
        tags=["session"],
        status_code=204,
        response_class=Response,
        responses={
            204: {"description": "signed out", "headers": {"Set-Cookie": COOKIE_CLEARED}},
            403: _problem("`portal-header-missing`"),
            503: _problem(
                "the sign-out could not be recorded (`Retry-After`); the session is ended all "
                "the same"
            ),
        },
        summary="sign out of the portal",
        description="Records the sign-out on the link's principal (`Principal.SessionClosed`: "
        "when, and when the session was opened; never the session's id), then ends the "
        f"session the cookie `{PORTAL_COOKIE}` names and clears the cookie, so a copy of it "
        "signs no one in after (401). A cookie naming no session that lasts records no "
        "sign-out (one found ended unused or at its end has that end recorded, decision "
        "0056) and is cleared all the same. Sends `"
        f"{PORTAL_HEADER}: 1` (403 `portal-header-missing` otherwise). The portal link "
        "still opens a new session until it expires or is revoked (`backcheck principals "
        "revoke`); the candidate's access package lists each sign-out "
        "(`portal_links.signed_out`).",
        openapi_extra={"parameters": [PORTAL_PARAMETER], "security": []},
    )
