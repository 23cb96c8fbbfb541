"""The API's routes, made from the one table (infra/http/table.py) and the use cases' DTOs.

A command's body is its DTO without the path's ids and without `actor`: both are filled in
here, the actor from the authenticated principal. A read's principal and role come from the
principal too; the request states only its purpose (and, for compliance, a break-glass
justification): the reads are made in infra/http/read_routes.py, on what every route of the
table shares (infra/http/endpoints.py). Every route answers its errors as problem+json
(infra/http/problems.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Body, FastAPI, Request, Response
from pydantic import BaseModel

from infra.http import applied_before, examples, problem_examples
from infra.http.auth import Authenticator
from infra.http.command_input import (
    IdempotencyKey,
    IfMatch,
    InvalidCommandInput,
    body_model,
    expected_version,
    read_command,
    required_body,
)
from infra.http.endpoints import DirectRoute, etag
from infra.http.idempotency import IdempotencyStore, Kept, fingerprint, pending
from infra.http.problems import (
    PROBLEM_JSON,
    error_response,
    field_errors,
    invalid,
    log,
    problem_response,
)
from infra.http.read_routes import ReadRoutes
from infra.http.request_shape import unsupported_media_type
from infra.http.table import COMMANDS, READS, CommandRoute, linked, path_ids, result_model
from infra.problem import problem_for
from services.application import Backcheck
from services.catalogue import USE_CASES
from services.errors import CommandAlreadyAppliedError
from services.identity import Identity, acting_as
from services.intake import CommandIntake
from services.unit import Delivery
from services.versions import expecting, noting_writes

# (body_model and result_model: what the OpenAPI document is made from, for its tests)
__all__ = ["PROBLEMS", "UNSUPPORTED", "Api", "body_model", "result_model"]

# Applied without a receipt even when keyed: erasure destroys keys after its write, and a
# retry must finish it (the use case resumes an erasure cut off), not be refused.
_NO_RECEIPT = frozenset({"erase-subject"})
PROBLEMS: dict[int | str, dict[str, Any]] = {
    s: {
        "content": {PROBLEM_JSON: {"examples": problem_examples.problem(s)}},
        "description": "a problem (RFC 9457)",
    }
    for s in (401, 403, 404, 409, 412, 413, 422, 503)
}
# A route that takes a body also answers 415, to a body not said to be JSON.
UNSUPPORTED: dict[int | str, dict[str, Any]] = {
    415: {
        "content": {PROBLEM_JSON: {"examples": problem_examples.problem(415)}},
        "description": "a problem (RFC 9457); `Accept-Post` names the media type taken",
        "headers": {
            "Accept-Post": {
                "description": "the media type a body must be sent as",
                "schema": {"type": "string", "examples": ["application/json"]},
            }
        },
    }
}


def _nothing_to_match(request: Request) -> Response:
    """If-Match on a command that creates its resource under no other: nothing it could name
    is there yet, so the condition is false (RFC 9110 13.1.1: `*` too), not ignored."""
    return problem_response(
        412,
        "Precondition failed",
        "no-current-version",
        "If-Match names a current version, and this command creates its resource: none is "
        "there to match; nothing was recorded — send the command without If-Match",
        request,
        rule="no-current-version",
    )


def _reused(request: Request) -> Response:
    return problem_response(
        422,
        "Idempotency key reused",
        "idempotency-key-reused",
        "this Idempotency-Key was sent before with another request; a key names one "
        "command: use a new key for a new command",
        request,
    )


def _merged(*responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses` entries of the same status merged, their content and headers too."""
    found: dict[int | str, dict[str, Any]] = {}
    for entries in responses:
        for status, entry in entries.items():
            into = found.setdefault(status, {})
            for name, value in entry.items():
                if isinstance(value, dict) and isinstance(into.get(name), dict):
                    into[name] = {**into[name], **value}
                else:
                    into[name] = value
    return found


class Api(ReadRoutes):
    """Builds the routes on one application, authenticator and store of kept answers: the
    commands here, the reads in infra/http/read_routes.py."""

    def __init__(
        self, application: Backcheck, authenticator: Authenticator, kept: IdempotencyStore
    ) -> None:
        super().__init__(application, authenticator)
        self.kept = kept
        self.intake = CommandIntake(application, refused={})

    # --- commands -------------------------------------------------------------------------

    def run_command(
        self, route: CommandRoute, request: Request, credential: str, raw: bytes
    ) -> Response:
        """The command, in a worker thread: its caller identified and permitted first, only
        then its request read (a caller without a valid token is told 401 and nothing about
        the body), its kept answer replayed or the use case run."""
        use_case = USE_CASES[route.use_case]
        identity = self.authenticator.identify(credential)
        try:
            use_case.permit(identity.role)
        except Exception as e:
            return error_response(request, e)
        if raw and (unsupported := unsupported_media_type(request)) is not None:
            return unsupported  # a body not said to be JSON is not read at all
        model = body_model(use_case, route.path_ids)
        try:
            sent = read_command(request, raw, route.path_ids, model, required_body(model))
        except InvalidCommandInput as e:
            return invalid(request, field_errors(e.errors))
        key, body, ids = sent.key, sent.body, sent.ids
        try:
            kept = self.kept.get(identity.principal, key) if key is not None else None
        except Exception as e:
            return error_response(request, e)
        if kept is not None and not kept.pending:
            return self._replayed(request, kept, raw)
        try:
            expected = expected_version(sent.if_match)
        except ValueError as e:
            return problem_response(422, "Invalid input", "if-match", str(e), request)
        target = next(iter(ids.values()), None)
        if target is None and sent.if_match is not None:
            return _nothing_to_match(request)
        sent_as = fingerprint(request.method, request.url.path, raw)
        delivery = None
        if key is not None and use_case.name not in _NO_RECEIPT:
            delivery = Delivery(f"http:{identity.principal}", key, use_case.name, "http")
            try:
                if (
                    kept is not None
                    and kept.fingerprint != sent_as
                    and self.intake.stored_by(delivery) is not None  # the other one applied
                ):
                    return _reused(request)
                # what this request is, kept before it is applied: a retry after its answer
                # was lost is known for the same request (infra/http/applied_before.py)
                self.kept.put(identity.principal, key, pending(sent_as))
            except Exception as e:
                return error_response(request, e)
        try:
            payload = {
                **(body.model_dump(mode="json", exclude_unset=True) if body else {}),
                **{k: str(v) for k, v in ids.items()},
                "actor": identity.principal,
            }
            versions = {target: expected} if target is not None and expected is not None else {}
            with acting_as(identity), expecting(versions), noting_writes() as written:
                if delivery is not None:
                    result = self.intake.apply(delivery, payload)
                else:
                    result = use_case.run(self.application, payload)
        except CommandAlreadyAppliedError as e:
            if delivery is None or kept is None or kept.fingerprint != sent_as:
                # applied by a request not known to be this one (its key's note expired, or
                # a racing request with another body): never answered as this one's
                return error_response(request, e)
            try:
                stored = self.intake.stored_by(delivery) or ()
                return applied_before.applied_before(self.application, route, request, e, stored)
            except Exception as failed:
                return error_response(request, failed)
        except Exception as e:
            return error_response(request, e)
        return self._answer(route, request, identity, result, key, raw, written)

    def _answer(
        self,
        route: CommandRoute,
        request: Request,
        identity: Identity,
        result: BaseModel,
        key: str | None,
        raw: bytes,
        written: dict[UUID, int],
    ) -> Response:
        content = result.model_dump(mode="json")
        location = route.created.format(**content) if route.created else None
        status = 201 if location else 200
        body = orjson.dumps(content)
        headers = {"Location": location} if location else {}
        target = self._target(route, content, request)
        # the version this command wrote (services/versions.py: noting_writes); the store is asked
        # only when the command wrote nothing to the target (a command delivered before)
        version = written.get(target) if target else None
        if version is None and target is not None:
            version = self.application.version_of(target)
        if (tag := etag(version)) is not None:
            headers["ETag"] = tag
        if key is not None:
            kept = Kept(
                fingerprint(request.method, request.url.path, raw),
                status,
                body,
                location,
                datetime.now(UTC),
                headers.get("ETag"),
            )
            try:
                self.kept.put(identity.principal, key, kept)
            except Exception as e:
                if problem_for(e) is None:
                    raise  # a bug, not a store gone
                # the command is applied and its answer is here: it is given, not a 503 for
                # the keeping; a retry is answered from the receipt (applied_before)
                log.warning("the answer to %s %s was not kept: %s", request.method, key, e)
        return Response(body, status, headers, media_type="application/json")

    @staticmethod
    def _target(route: CommandRoute, content: dict[str, Any], request: Request) -> UUID | None:
        """The aggregate the command changed (or created): its version is the ETag."""
        if route.created:
            field = route.new_id or path_ids(route.created)[-1]
            return UUID(str(content[field]))
        first = route.path_ids[0] if route.path_ids else None
        return UUID(request.path_params[first]) if first else None

    @staticmethod
    def _replayed(request: Request, kept: Kept, raw: bytes) -> Response:
        if kept.fingerprint != fingerprint(request.method, request.url.path, raw):
            return _reused(request)
        headers = {"Idempotent-Replayed": "true"}
        if kept.location:
            headers["Location"] = kept.location
        if kept.etag:  # the version the command wrote, as the first answer said
            headers["ETag"] = kept.etag
        return Response(kept.body, kept.status, headers, media_type="application/json")

    def command_endpoint(self, route: CommandRoute) -> Callable[..., Awaitable[Response]]:
        """A POST whose body is the command's DTO less what the request does not send; served
        direct (DirectRoute): the credential taken, the body read as bytes, and both handed
        to `run_command`, which parses nothing before the token is checked."""
        use_case = USE_CASES[route.use_case]
        model = body_model(use_case, route.path_ids)
        required = required_body(model)
        api = self

        async def direct(request: Request) -> Response:
            credential = api.authenticator.credential(request)  # none: 401, the body unread
            raw = await request.body()
            return await api.offload(api.run_command, route, request, credential, raw)

        async def endpoint(request: Request, **params: Any) -> Response:
            """Its signature documents the route; served, it is `direct` (DirectRoute)."""
            return await direct(request)

        parameters = [
            *self._caller_and_ids(route.path_ids),
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    model if required else model | None,
                    Body(openapi_examples=examples.body(use_case.name)),
                ],
                **({} if required else {"default": None}),
            ),
            inspect.Parameter(
                "idempotency_key",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=IdempotencyKey,
                default=None,
            ),
            inspect.Parameter(
                "if_match", inspect.Parameter.KEYWORD_ONLY, annotation=IfMatch, default=None
            ),
        ]
        endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        endpoint.__name__ = use_case.method
        endpoint.__doc__ = use_case.summary
        endpoint.direct = direct  # type: ignore[attr-defined]
        return endpoint

    def install(self, app: FastAPI) -> None:
        for route in COMMANDS:
            use_case = USE_CASES[route.use_case]
            app.router.add_api_route(
                route.path,
                self.command_endpoint(route),
                route_class_override=DirectRoute,
                methods=["POST"],
                tags=[route.tag],
                status_code=201 if route.created else 200,
                response_model=result_model(use_case),
                responses=linked(
                    route,
                    201 if route.created else 200,
                    _merged(
                        PROBLEMS,
                        UNSUPPORTED,
                        examples.answer(use_case.name, 201 if route.created else 200),
                        applied_before.documented(201 if route.created else 200),
                    ),
                ),
                summary=use_case.name,
                description=f"{use_case.summary}\n\nRoles: "
                + ", ".join(sorted(r.value for r in use_case.roles)),
            )
        for read in READS:
            use_case = USE_CASES[read.use_case]
            app.router.add_api_route(
                read.path,
                self.read_endpoint(read),
                route_class_override=DirectRoute,
                methods=["GET"],
                tags=[read.tag],
                response_model=result_model(use_case),
                responses=linked(read, 200, {**PROBLEMS, **examples.answer(use_case.name, 200)}),
                summary=use_case.name,
                description=f"{use_case.summary}\n\nDecided by the access policies, redacted "
                "per category, recorded before it is answered.",
            )
