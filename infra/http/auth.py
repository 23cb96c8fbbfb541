"""Who is calling: the bearer credential of every request, verified, never asserted.

An API token (`bck_…`, issued by `backcheck principals add`, or a candidate's portal link) is
checked against its principal's recorded hash; with OIDC configured, any other bearer is a
JWT checked against the identity provider's keys (infra/http/oidc.py). Without a bearer, the
portal's session cookie signs its candidate in while the session lasts and the link it was
opened with still would (infra/http/sessions.py). What the caller may do comes from the
verified identity alone: no header, query parameter or body field names a role.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from domain.errors import PickledAsItIs
from domain.principal import principal_id
from infra.http.problems import error_response, problem_response
from infra.http.request_shape import refusal, taken_by
from infra.http.sessions import PortalSessions
from infra.problem import problem_for
from services.application import Backcheck
from services.errors import AuthenticationError
from services.identity import Identity
from services.principals import PORTAL_ERASED, TOKEN_EXPIRED, TOKEN_REVOKED, UNKNOWN_TOKEN

TOKEN_PREFIX = "bck_"
MAX_CREDENTIAL = 8192  # a JWT with many claims stays well below this
PORTAL_COOKIE = "backcheck_portal"


# A portal link refused, as its candidate reads it: an unknown token is most often an older
# link, replaced when a newer one was issued (saying so tells a guesser nothing: any token
# of the right shape that is not a current link gets the same words).
_LINK_REFUSALS = {
    UNKNOWN_TOKEN: (
        "this link no longer opens your portal: it may have been replaced by a newer one "
        "(only the latest link you were sent works) or copied incompletely; open the latest "
        "link you received, or ask the recruiter who contacted you for a new one"
    ),
    TOKEN_EXPIRED: (
        "this portal link has expired; ask the recruiter who contacted you for a new one"
    ),
    TOKEN_REVOKED: (
        "this portal link was revoked and no longer opens your portal; if you still need "
        "it, ask the recruiter who contacted you"
    ),
    PORTAL_ERASED: (
        "your personal data was erased, and with it this portal is closed for good; the "
        "record of what was done remains, without your data"
    ),
}


class Unauthenticated(PickledAsItIs, Exception):  # noqa: N818  (answered as 401, never raised to a user)
    def __init__(self, detail: str, presented: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.presented = presented

    def challenge(self) -> str:
        challenge = 'Bearer realm="backcheck"'
        if self.presented:
            challenge += ', error="invalid_token"'
        return challenge


def unauthenticated(request: Request, error: Unauthenticated) -> Response:
    """The answer to a caller who is not identified: 401, saying how to authenticate."""
    return problem_response(
        401,
        "Unauthenticated",
        "unauthenticated",
        error.detail,
        request,
        {"WWW-Authenticate": error.challenge()},
    )


class Unanswerable(Exception):  # noqa: N818  (answered by its error's problem)
    """Who is calling could not be checked: the store (or the identity provider) failed. The
    request is answered with `error`'s problem (a 503 when the store is unreachable)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


# A JWT verifier: the bearer credential -> the identity it proves (raises AuthenticationError).
JwtVerifier = Callable[[str], Identity]


class SessionCookie(str):
    """A credential taken from the portal's cookie: a session's id, never a token."""

    __slots__ = ()


@dataclass(eq=False)
class Authenticator:
    application: Backcheck
    sessions: PortalSessions
    oidc: JwtVerifier | None = None

    def credential(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            cookie = request.cookies.get(PORTAL_COOKIE)
            if cookie:  # the portal page's session (infra/http/portal.py)
                return SessionCookie(cookie)
            raise Unauthenticated("no credential: send `Authorization: Bearer <token>`", False)
        given = sum(1 for name, _ in request.scope["headers"] if name == b"authorization")
        if given > 1:  # which would count is the client's guess: none does
            raise Unauthenticated(
                f"{given} Authorization headers: send one, `Bearer <token>`", True
            )
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise Unauthenticated("the Authorization header must be `Bearer <token>`", True)
        if len(value) > MAX_CREDENTIAL:
            raise Unauthenticated(f"the bearer credential is over {MAX_CREDENTIAL} bytes", True)
        return value

    def identify(self, credential: str) -> Identity:
        try:
            if isinstance(credential, SessionCookie):
                return self._in_session(credential)
            if credential.startswith(TOKEN_PREFIX):
                return self.application.authenticate(credential)
            if self.oidc is not None:
                return self.oidc(credential)
        except AuthenticationError as e:
            why = str(e)
            if isinstance(credential, SessionCookie):  # only the portal sends the cookie
                why = _LINK_REFUSALS.get(why, why)
            raise Unauthenticated(why, True) from None
        except Exception as e:
            if problem_for(e) is None:
                raise  # a bug: the server's log has it
            raise Unanswerable(e) from e
        raise Unauthenticated(
            "not a backcheck token, and no OIDC issuer is configured (BACKCHECK_OIDC_ISSUER)",
            True,
        )

    def for_the_candidate(self, credential: str) -> Identity:
        """`identify` for a portal link or session: a link that no longer signs in is refused
        in words its candidate can act on (the page shows the detail as it is)."""
        try:
            return self.identify(credential)
        except Unauthenticated as e:
            worded = _LINK_REFUSALS.get(e.detail)
            if worded is None:
                raise
            raise Unauthenticated(worded, e.presented) from None

    def _in_session(self, session_id: SessionCookie) -> Identity:
        """The candidate the portal session signs in, while it lasts and the link it was
        opened with still signs them in: a link revoked, replaced or expired since ends it."""
        session = self.sessions.find(session_id, self.application.clock())
        if session is None:
            raise AuthenticationError(
                "no portal session: signed out, unused too long or over; open the portal "
                "from its link again"
            )
        try:
            identity = self.application.authenticate_kept(
                principal_id(session.principal), session.link_hash
            )
            if identity.principal != session.principal or {
                str(a) for a in identity.assignments
            } != {session.candidate_id}:
                raise AuthenticationError("the portal session's link signs in someone else")
        except AuthenticationError:
            self.sessions.end(session_id)
            raise
        return identity

    async def presented(self, request: Request) -> str:
        """The bearer credential, taken from the request on the event loop (no store read):
        a route that checks it in the same worker thread as the work it asks for leaves the
        loop once per request, not twice."""
        return self.credential(request)

    def __call__(self, request: Request) -> Identity:
        """As a FastAPI dependency, in a worker thread: checking a token reads the store,
        which must not hold up the event loop while a write is being made durable. A route
        that checked it first (`checked_first`) has left the identity on the request."""
        known = getattr(request.state, "identity", None)
        if isinstance(known, Identity):
            return known
        return self.identify(self.credential(request))


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def checked_first(
    authenticator: Authenticator, permit: Callable[[Identity], None] | None = None
) -> type[APIRoute]:
    """A route class for the API's routes FastAPI serves: the caller's token is checked (and
    `permit` asked of the identity: the route's role rule) before FastAPI's handler parses
    anything of the request, so a caller without a valid token is told 401, and one not
    permitted 403, whatever the body or the query, and learns nothing of their rules; then
    the request's shape (infra/http/request_shape.py: 415 for a body not said to be JSON,
    422 for an unknown or repeated parameter or a member named twice), and only then
    FastAPI's own checks of each value. (The table's commands and reads are served direct and
    check first on their own: infra/http/routes.py.)"""

    class CheckedFirst(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()
            taken = taken_by(self)

            async def checked(request: Request) -> Response:
                credential = authenticator.credential(request)
                identity = await run_in_threadpool(authenticator.identify, credential)
                request.state.identity = identity
                if permit is not None:
                    try:
                        permit(identity)
                    except Exception as e:
                        return error_response(request, e)
                if (refused := await refusal(request, taken)) is not None:
                    return refused
                return await handler(request)

            return checked

    return CheckedFirst
