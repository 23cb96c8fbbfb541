"""Lists over HTTP: candidates, investigations and reports, a page at a time, by status.

    GET /v1/candidates?status=&cursor=&limit=           by stage in the pipeline
    GET /v1/investigations?status=&cursor=&limit=       by InvestigationStatus
    GET /v1/reports?status=&awaiting_review=&cursor=&limit=   by ReportStatus; the review queue

Each answers `{"items": [...], "next_cursor": ..., "limit": ...}` and, when there is a next
page, an RFC 8288 `Link: <…?cursor=…>; rel="next"` header: the same request with the next
page's cursor. The role the list is decided on comes from the authenticated identity, never
from the request; the rules (who may list, what a cursor is) are the use cases'
(services/lists.py), and every error is a problem (infra/http/problems.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response

from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from infra.http.auth import Authenticator, checked_first
from infra.http.problems import error_response
from infra.http.routes import PROBLEMS as ROUTE_PROBLEMS
from infra.http.table import answer_ids, links
from services.application import Backcheck
from services.identity import Identity, acting_as
from services.lists import (
    MAX_CURSOR,
    MAX_LIMIT,
    CandidateItem,
    CandidateStage,
    InvestigationItem,
    ListCandidates,
    ListInvestigations,
    ListReports,
    Page,
    ReportItem,
    check_lister,
)

PROBLEMS: dict[int | str, dict[str, Any]] = {s: ROUTE_PROBLEMS[s] for s in (401, 403, 422, 503)}
NEXT = {
    "Link": {
        "description": 'the next page, as `<url>; rel="next"` (RFC 8288); absent on the last',
        "schema": {"type": "string"},
    }
}

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description="the `next_cursor` of the page before (opaque); none for the first page",
        examples=["MjAyNi0wMy0wMlQwOTowMDowMC4wMDAwMDBafDAxOTU"],
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page", examples=[50])]


def _answer(request: Request, identity: Identity, page_of: Callable[[], Page[Any]]) -> Response:
    try:
        with acting_as(identity):  # the list's rules ask who (services/lists.py)
            page = page_of()
    except Exception as e:
        return error_response(request, e)
    headers = {"Cache-Control": "no-store"}
    if page.next_cursor is not None:
        following = request.url.include_query_params(cursor=page.next_cursor)
        # a reference relative to the request (RFC 8288, 3986): not the URL the Host
        # header names, which the client chooses
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return Response(page.model_dump_json(), 200, headers, media_type="application/json")


def _lister(kind: str) -> Callable[[Identity], None]:
    return lambda identity: check_lister(kind, identity.role, identity)


def install(app: FastAPI, application: Backcheck, authenticator: Authenticator) -> None:
    """The three list routes on `app`, answered by `application` for the identity
    `authenticator` verifies; the role rule asked before the query is looked at."""
    signed_in = Depends(authenticator)

    def candidates(
        request: Request,
        status: Annotated[
            CandidateStage | None,
            Query(description="only candidates at this stage", examples=["consented"]),
        ] = None,
        cursor: CursorQuery = None,
        limit: LimitQuery = 50,
        identity: Identity = signed_in,
    ) -> Response:
        """Candidates by their stage in the pipeline, in the order they reached it (all of
        them, in the order they were registered, without `status`). Ids, stages, times and
        counts only: no personal value."""
        return _answer(
            request,
            identity,
            lambda: application.list_candidates(
                ListCandidates(status=status, cursor=cursor, limit=limit), identity.role
            ),
        )

    def investigations(
        request: Request,
        status: Annotated[
            InvestigationStatus | None,
            Query(description="only investigations in this status", examples=["in progress"]),
        ] = None,
        cursor: CursorQuery = None,
        limit: LimitQuery = 50,
        identity: Identity = signed_in,
    ) -> Response:
        """Investigations by status, in the order they took it (all of them, in the order
        they were planned, without `status`). Ids, statuses, check types, times and counts."""
        return _answer(
            request,
            identity,
            lambda: application.list_investigations(
                ListInvestigations(status=status, cursor=cursor, limit=limit), identity.role
            ),
        )

    def reports(
        request: Request,
        status: Annotated[
            ReportStatus | None,
            Query(description="only reports in this status", examples=["approved"]),
        ] = None,
        awaiting_review: Annotated[
            bool,
            Query(description="only reports awaiting review (drafts), longest waiting first"),
        ] = False,
        cursor: CursorQuery = None,
        limit: LimitQuery = 50,
        identity: Identity = signed_in,
    ) -> Response:
        """Reports by status, in the order they took it (all of them, in the order they were
        compiled, without `status`); `awaiting_review=true` is the review queue."""
        return _answer(
            request,
            identity,
            lambda: application.list_reports(
                ListReports(
                    status=status, awaiting_review=awaiting_review, cursor=cursor, limit=limit
                ),
                identity.role,
            ),
        )

    routes: list[tuple[str, Callable[..., Response], Any, str, str]] = [
        ("/v1/candidates", candidates, Page[CandidateItem], "candidates", "candidate"),
        (
            "/v1/investigations",
            investigations,
            Page[InvestigationItem],
            "investigations",
            "investigation",
        ),
        ("/v1/reports", reports, Page[ReportItem], "reports", "report"),
    ]
    for path, endpoint, model, tag, kind in routes:
        app.router.add_api_route(
            path,
            endpoint,
            route_class_override=checked_first(authenticator, _lister(kind)),
            methods=["GET"],
            tags=[tag],
            response_model=model,
            # a page's first item links to the operations on it (infra/http/table.py)
            responses={200: {"headers": NEXT, "links": links(answer_ids(model))}, **PROBLEMS},
            summary=f"list {tag}",
        )
