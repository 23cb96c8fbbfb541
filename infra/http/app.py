"""The HTTP application: the API's routes on one backcheck application.

No page or document it serves loads anything from another host: the OpenAPI document is at
`/openapi.json` (the interactive pages of FastAPI fetch their scripts from a CDN, so they are
off), the dashboard and the portal are served from this package.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version as _installed
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from infra.config import Settings
from infra.http import compliance, contract, dashboard, lists, portal
from infra.http.auth import (
    PORTAL_COOKIE,
    Authenticator,
    Unanswerable,
    Unauthenticated,
    checked_first,
    unauthenticated,
)
from infra.http.bodies import DEFAULT_MAX_BODY, BodyLimit
from infra.http.breaker import BreakerGate, StoreBreaker
from infra.http.head import HeadAsGet
from infra.http.health import install_health
from infra.http.idempotency import IdempotencyStore
from infra.http.problems import PROBLEMS_DOC, error_response, install
from infra.http.read_path import ReadPaths
from infra.http.routes import PROBLEMS, Api
from services.application import Backcheck
from services.identity import Identity

DESCRIPTION = (
    """\
Employment background checks under written consent, every personal read recorded.

Authenticate every request with `Authorization: Bearer <token>`: an API token from
`backcheck principals add`, a candidate's portal link token, or (where configured) an OIDC
access token. Your role and assignments come from the token alone.

Errors are RFC 9457 problems (`application/problem+json`) with an absolute `type`, the rule
and, for invalid input, each field with its rule. Commands take an `Idempotency-Key`; answers
about one resource carry its version as `ETag`, which a command's `If-Match` may name.
"""
    + PROBLEMS_DOC
)


@cache
def version() -> str:
    return _installed("backcheck")  # reads the installed metadata: once


class Me(BaseModel):
    principal: str
    role: str
    authentication: str
    assignments: list[str]


SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token (`bck_…`), a candidate's portal link token, or an OIDC "
        "access token where an issuer is configured",
    },
    "portalSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": PORTAL_COOKIE,
        "description": "the candidate's portal session (set by `POST /portal/session`); "
        "calls made with it also send `X-Backcheck-Portal: 1`",
    },
}


def _declare_security(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, saying how to authenticate: every operation that can answer 401
    takes the bearer token or the portal's session cookie, unless it says which it takes
    (opening the portal's session takes the link's bearer token alone)."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for operations in document["paths"].values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation.setdefault("security", [{"bearer": []}, {"portalSession": []}])
    return document


def create_app(
    application: Backcheck,
    authenticator: Authenticator,
    kept: IdempotencyStore,
    *,
    settings: Settings | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API on `application`; with `settings` (the store's files: its checkpoints and
    signing key) the compliance routes that read the store's files too."""
    app = FastAPI(
        title="backcheck",
        version=version(),
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks: off (asked on every request otherwise)
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[
            {"name": "candidates", "description": "candidates, their claims and erasure"},
            {"name": "consents", "description": "consents asked for, granted, withdrawn"},
            {"name": "investigations", "description": "checks, findings, feedback, disputes"},
            {"name": "reports", "description": "reports, reviews, disclosures, legal hold"},
            {"name": "session", "description": "who you are signed in as"},
            {"name": "contract", "description": "the Kafka topics' AsyncAPI document"},
        ],
    )
    install(app)

    async def on_unauthenticated(request: Request, error: Exception) -> Response:
        assert isinstance(error, Unauthenticated)
        return unauthenticated(request, error)

    async def on_unanswerable(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Unanswerable)
        return error_response(request, error.error)

    app.add_exception_handler(Unauthenticated, on_unauthenticated)
    app.add_exception_handler(Unanswerable, on_unanswerable)
    api = Api(application, authenticator, kept)
    api.install(app)
    # The table's reads found ahead of the router (infra/http/read_path.py). Added first, so
    # innermost of the middleware: the portal's check, the body limit and the breaker's gate,
    # added after it, still see every request first.
    app.add_middleware(ReadPaths, routes=app.router.routes)
    app.state.workers = api.workers  # closed by whoever serves the app
    lists.install(app, application, authenticator)
    portal.install(app, application, authenticator)
    dashboard.install(app, application, authenticator, settings=settings)
    contract.install(app)
    if settings is not None:
        compliance.install(app, application, authenticator, settings)

    signed_in = Depends(authenticator)

    def me(identity: Identity = signed_in) -> Me:
        return Me(
            principal=identity.principal,
            role=identity.role.value,
            authentication=identity.authentication.value,
            assignments=sorted(str(a) for a in identity.assignments),
        )

    app.router.add_api_route(
        "/v1/me",
        me,
        route_class_override=checked_first(authenticator),
        methods=["GET"],
        tags=["session"],
        response_model=Me,
        responses={401: PROBLEMS[401], 422: PROBLEMS[422]},
        summary="who the bearer token signs you in as",
    )

    def root() -> dict[str, Any]:
        return {"api": "/v1", "openapi": "/openapi.json", "version": version()}

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    made = app.openapi  # FastAPI's own, which keeps the document once made

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _declare_security(made())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    breaker: StoreBreaker | None = None
    if settings is not None and settings.backend == "postgres":
        breaker = StoreBreaker(settings.postgres_conninfo(), settings.describe())
        app.state.breaker = breaker
        app.add_middleware(BreakerGate, breaker=breaker)
    install_health(app, application, settings, breaker)
    app.add_middleware(HeadAsGet)  # last, so outermost: everything inside sees the GET
    return app
