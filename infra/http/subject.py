"""The data subject's own routes: who sees what of their data, and their access package.

    GET  /v1/candidates/{candidate_id}/visibility       each reader and the categories the
                                                         policies give them now (no value)
    POST /v1/candidates/{candidate_id}/access-package   everything held about them, as a JSON
                                                         download, recorded as a disclosure first

The candidate asks about themselves (their portal link), compliance about anyone; others are
refused with 403. The rules are the use cases' (services/visibility.py,
services/subject_export.py); the caller is the authenticated identity, never the request.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Depends, FastAPI, Request, Response

from infra.http.auth import Authenticator, checked_first
from infra.http.problems import error_response
from infra.http.routes import PROBLEMS
from services.application import Backcheck
from services.identity import Identity, acting_as
from services.subject_export import ExportSubjectData, SubjectDataPackage
from services.visibility import VisibilityView, check_asker

TAG = "candidates"
DISCLOSURE_HEADER = "X-Disclosure-Id"


def install(app: FastAPI, application: Backcheck, authenticator: Authenticator) -> None:
    signed_in = Depends(authenticator)

    def visibility(request: Request, candidate_id: UUID, identity: Identity = signed_in) -> Any:
        try:
            check_asker(identity, candidate_id)
            with acting_as(identity):
                view = application.who_sees_what(candidate_id)
        except Exception as e:
            return error_response(request, e)
        return Response(
            view.model_dump_json(),
            200,
            {"Cache-Control": "no-store"},
            media_type="application/json",
        )

    def access_package(
        request: Request, candidate_id: UUID, identity: Identity = signed_in
    ) -> Response:
        try:
            with acting_as(identity):
                package = application.export_subject_data(
                    ExportSubjectData(candidate_id=candidate_id, actor=identity.principal)
                )
        except Exception as e:
            return error_response(request, e)
        name = f"access-package-{candidate_id}.json"
        return Response(
            package.model_dump_json(indent=2),
            200,
            {
                "Content-Disposition": f'attachment; filename="{name}"',
                DISCLOSURE_HEADER: str(package.disclosure_id),
                "Cache-Control": "no-store",
            },
            media_type="application/json",
        )

    problems: dict[int | str, dict[str, Any]] = {
        s: PROBLEMS[s] for s in (401, 403, 404, 409, 422, 503)
    }
    # the role rules need the candidate: asked in the handlers, after FastAPI's checks
    checked = checked_first(authenticator)
    app.router.add_api_route(
        "/v1/candidates/{candidate_id}/visibility",
        visibility,
        route_class_override=checked,
        methods=["GET"],
        tags=[TAG],
        response_model=VisibilityView,
        responses=problems,
        summary="read-visibility",
        description="Who sees what of the candidate's data: each reader their case gives them "
        "(recruiter, assigned investigators, reviewers, recipients of a disclosed report, "
        "compliance, the candidate) and the categories the access policies allow or withhold "
        "from that reader now, with the deciding policies. Categories only, never a value, so "
        "it is not a recorded read. The candidate their own; compliance anyone's.",
    )
    app.router.add_api_route(
        "/v1/candidates/{candidate_id}/access-package",
        access_package,
        route_class_override=checked,
        methods=["POST"],
        tags=[TAG],
        response_model=SubjectDataPackage,
        responses={
            200: {
                "description": "the package, as a download (`Content-Disposition: attachment`)",
                "headers": {
                    DISCLOSURE_HEADER: {
                        "description": "the id of the recorded disclosure of this package",
                        "schema": {"type": "string", "format": "uuid"},
                    }
                },
            },
            **problems,
        },
        summary="export-subject-data",
        description="Everything held about the candidate (GDPR Art. 15/20, PIPL Art. 45): "
        "profile values, consents, investigations with feedback, disputes and answers, "
        "reports, timeline and access log, machine-readable. Personal data leaving: recorded "
        "as a disclosure to the candidate (DataDisclosed, channel `access package`) before it "
        "is assembled; then read as the candidate reads their own data, each read recorded. "
        "The candidate their own; compliance on their behalf.",
    )
