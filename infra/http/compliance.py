"""Compliance over HTTP: the store's own verification, the rule check, the case overview as
of a moment, and one subject's evidence bundle as a download.

Each is for compliance officers alone (403 for anyone else, before anything of the request
is looked at: a caller refused learns none of its rules); the whole store's looks (the
verification, the check, the overview) for those not scoped to some candidates (decisions
0060, 0063). The reads about subjects are
recorded reads or disclosures: the timeline and as-of reads of one candidate are the table's
(infra/http/table.py); the whole store's case overview as of a moment records a read of each
candidate it shows, for the purpose given, as `backcheck audit as-of` does; the evidence
bundle records its DataDisclosed before it exists. Verification and the check replay the
whole store: they answer once it is done, as `backcheck audit verify` and `audit check` do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, StringConstraints

from infra.audit.cosigned import BY_QUERY
from infra.audit.trail import (
    StoreVerification,
    check_cosigned,
    evidence_export,
    keep_bundle_checkpoint,
)
from infra.config import Settings
from infra.http.auth import Authenticator, checked_first
from infra.http.problems import error_response
from infra.http.routes import PROBLEMS, UNSUPPORTED
from services.access import Role
from services.application import Backcheck
from services.audit_reads import CASE_LIST, CasesAsOfView, ReadCasesAsOf
from services.dto import Moment, Text
from services.errors import ScopedListError, UseCaseNotPermittedError
from services.evidence import ExportEvidence
from services.identity import Identity, acting_as, check_whole_store

TAG = "compliance"


class EvidenceRequest(BaseModel):
    """Who receives the bundle and why: recorded as the disclosure."""

    model_config = {"extra": "forbid"}
    recipient: Text = Field(examples=["county court case 2026-114"])
    purpose: Text = Field(examples=["legal proceedings"])


EVIDENCE_EXAMPLE = {
    "example": {
        "summary": "a bundle for the court hearing Li Lei's claim",
        "value": {"recipient": "county court case 2026-114", "purpose": "legal proceedings"},
    }
}
AT_EXAMPLE = {"example": {"summary": "the end of 2026", "value": "2026-12-31T23:59:59+00:00"}}
PURPOSE_EXAMPLE = {"example": {"summary": "an audit of past decisions", "value": "audit"}}
# a purpose as a read route takes it (infra/http/read_routes.py): bounded here, the rest
# checked by the read's command, which names the field
_Bounded = Annotated[str, StringConstraints(max_length=2000)]


class Violations(BaseModel):
    events: int
    violations: list[dict[str, Any]]


def _compliance_only(identity: Identity, what: str) -> None:
    if identity.role is not Role.COMPLIANCE:
        raise UseCaseNotPermittedError(what, identity.role.value, [Role.COMPLIANCE.value])


# the whole store's looks a token scoped to some candidates is refused (decision 0063)
_VERIFICATION = "the chain's verification"
_CHECK = "the rule check"


def _whole_store(what: str, look: str) -> Callable[[Identity], None]:
    """The verification and the check replay every candidate's events and answer of the whole
    store (its size, its head; violations and problems naming candidates): for compliance
    officers not scoped to some candidates, as the overview below."""

    def check(identity: Identity) -> None:
        _compliance_only(identity, what)
        check_whole_store(identity, look)

    return check


def _every_case(identity: Identity) -> None:
    """The whole store's overview names every candidate, as a list does: for compliance
    officers not scoped to some candidates (services/audit_reads.py asks it again)."""
    _compliance_only(identity, "audit-as-of")
    if identity.assignments:
        raise ScopedListError(identity.principal, CASE_LIST)


def install(
    app: FastAPI, application: Backcheck, authenticator: Authenticator, settings: Settings
) -> None:
    signed_in = Depends(authenticator)
    verifier = _whole_store("audit-verify", _VERIFICATION)
    checker = _whole_store("audit-check", _CHECK)

    def verification(request: Request, identity: Identity = signed_in) -> Response:
        try:
            verifier(identity)
            with StoreVerification(settings, workers=1) as run:
                verdict = run.run()
        except Exception as e:
            return error_response(request, e)
        body = {**verdict.as_dict(), "skipped": [str(p) for p in run.skipped]}
        return _json(body)

    def violations(request: Request, identity: Identity = signed_in) -> Response:
        try:
            checker(identity)
            found = list(application.violations())
            events = application.recorder.max_notification_id() or 0
        except Exception as e:
            return error_response(request, e)
        rows = [
            {**v.__dict__, "aggregate_id": str(v.aggregate_id), "candidate_id": str(v.candidate_id)}
            for v in found
        ]
        return _json(Violations(events=events, violations=rows).model_dump(mode="json"))

    def as_of(
        request: Request,
        at: Annotated[
            Moment,
            Query(description="the moment, ISO 8601 with its offset", openapi_examples=AT_EXAMPLE),
        ],
        purpose: Annotated[
            _Bounded,
            Query(
                description="why you read it; recorded with the read of each candidate shown",
                openapi_examples=PURPOSE_EXAMPLE,
            ),
        ],
        identity: Identity = signed_in,
    ) -> Response:
        try:
            _every_case(identity)
            # the read `audit as-of` makes: one of each candidate shown, recorded first
            with acting_as(identity):
                read = application.read_cases_as_of(
                    ReadCasesAsOf.model_validate(
                        {
                            "at": at,
                            "principal": identity.principal,
                            "role": identity.role,
                            "purpose": purpose,
                        }
                    )
                )
        except Exception as e:
            return error_response(request, e)
        access_ids = [str(i) for i in read.access_ids]
        return _json({"at": at.isoformat(), "access_ids": access_ids, "cases": read.cases})

    def evidence(
        request: Request,
        candidate_id: UUID,
        body: Annotated[EvidenceRequest, Body(openapi_examples=EVIDENCE_EXAMPLE)],
        witnesses_required: Annotated[
            int | None,
            Query(
                ge=1,
                le=63,
                description="prove in the newest checkpoint this many configured witnesses "
                "cosigned (BACKCHECK_WITNESS_KEYS), carrying their cosignatures; 409 when none "
                "covers the subject's records (nothing is then recorded)",
            ),
        ] = None,
        identity: Identity = signed_in,
    ) -> Response:
        try:
            _compliance_only(identity, "export-evidence")
            check_cosigned(application, settings, candidate_id, witnesses_required, BY_QUERY)
            with acting_as(identity):
                exported = evidence_export(
                    application, settings, witnesses_required=witnesses_required, asked=BY_QUERY
                ).export(
                    ExportEvidence(
                        candidate_id=candidate_id,
                        recipient=body.recipient,
                        purpose=body.purpose,
                        actor=identity.principal,
                    )
                )
            keep_bundle_checkpoint(settings, exported)
        except Exception as e:
            return error_response(request, e)
        name = f"evidence-{candidate_id}-{exported.checkpoint_position}.bundle"
        return Response(
            exported.bundle,
            200,
            {
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Disclosure-Id": str(exported.disclosure_id),
                "Cache-Control": "no-store",
            },
            media_type="application/octet-stream",
        )

    problems: dict[int | str, dict[str, Any]] = {s: PROBLEMS[s] for s in (401, 403, 404, 422, 503)}

    def only(what: str) -> type[APIRoute]:
        """The route class of a compliance route: its caller's role before its request."""
        return checked_first(authenticator, lambda identity: _compliance_only(identity, what))

    app.router.add_api_route(
        "/v1/audit/verification",
        verification,
        route_class_override=checked_first(authenticator, verifier),
        methods=["GET"],
        tags=[TAG],
        responses=problems,
        summary="audit-verify",
        description="Recompute the hash chain over every stored event and hold it to the "
        "signed checkpoints kept with the store: `intact`, the head, the first bad position. "
        "The whole store's: a token scoped to some candidates is refused it (403 "
        "`outside-assignments`), before anything is read.",
    )
    app.router.add_api_route(
        "/v1/audit/violations",
        violations,
        route_class_override=checked_first(authenticator, checker),
        methods=["GET"],
        tags=[TAG],
        response_model=Violations,
        responses=problems,
        summary="audit-check",
        description="Replay the whole stream: every broken rule with its position. The whole "
        "store's: a token scoped to some candidates is refused it (403 "
        "`outside-assignments`), before anything is read.",
    )
    app.router.add_api_route(
        "/v1/audit/as-of",
        as_of,
        route_class_override=checked_first(authenticator, _every_case),
        methods=["GET"],
        tags=[TAG],
        response_model=CasesAsOfView,
        responses=problems,
        summary="audit-as-of",
        description="Every case's overview (ids and statuses, no personal value) as it stood "
        "at a moment, rebuilt from the events up to then. Whose case it is is the subject's "
        "business: a read of each candidate shown (view `case as of`) is recorded first, "
        "under the caller and the `purpose` given, as `backcheck audit as-of` records; "
        "`access_ids` names them.",
    )
    app.router.add_api_route(
        "/v1/candidates/{candidate_id}/evidence",
        evidence,
        route_class_override=only("export-evidence"),
        methods=["POST"],
        tags=[TAG],
        responses={
            200: {"content": {"application/octet-stream": {}}, "description": "the bundle"},
            **problems,
            409: PROBLEMS[409],
            **UNSUPPORTED,
        },
        summary="export-evidence",
        description="One subject's events with chain proofs and a checkpoint signed now, as "
        "a download. A disclosure of personal data: recorded (DataDisclosed) before the "
        "bundle exists; its id is in `X-Disclosure-Id`.",
    )


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), 200, media_type="application/json")
