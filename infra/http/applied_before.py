"""The answer to a keyed command applied before whose first answer was not kept.

A command sent with an `Idempotency-Key` is applied with a receipt (services/intake.py) in its
one write, and its answer is kept afterwards (infra/http/idempotency.py). Between the two the
answer can be lost: the kept answers' store gone after the commit, the server stopped. The
client's retry then finds the receipt and no answer. What the first request was is kept before
it is applied (a pending row: its fingerprint), so a retry of the same request is answered as
applied: the route's status (201, 200), the `Location` of what it created and the `ETag` of
what it wrote, both found from the events its receipt names, `Idempotent-Replayed: true`, and
this body — the use case's own answer is not kept anywhere else, so it cannot be given again.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import orjson
from fastapi import Request, Response
from pydantic import BaseModel, Field

from infra.http.endpoints import etag
from infra.http.table import CommandRoute, path_ids
from infra.store.recorder import chained
from services.application import Backcheck
from services.errors import CommandAlreadyAppliedError

MEDIA_TYPE = "application/vnd.backcheck.applied-before+json"
MAX_EVENTS = 1_000  # events listed (a command stores a handful)


class StoredEventRef(BaseModel):
    id: str = Field(max_length=80, description="`originator id:version`, as the relay names it")
    position: int = Field(ge=1, description="its position in the log")


class AppliedBefore(BaseModel):
    """A keyed command applied before, whose first answer was not kept: what it stored."""

    outcome: Literal["applied-before"]
    detail: str = Field(max_length=2_000)
    command_type: str = Field(max_length=256, description="the use case it ran")
    applied_at: str = Field(max_length=64, description="when it was applied (RFC 3339)")
    events: list[StoredEventRef] = Field(
        max_length=MAX_EVENTS, description="the events it stored, its receipt's apart"
    )
    receipt: StoredEventRef | None = Field(description="its receipt, stored with them")


def _parsed(event_id: str) -> tuple[UUID, int]:
    originator, _, version = event_id.rpartition(":")
    return UUID(originator), int(version)


def _kind(app: Backcheck, originator: UUID) -> str:
    """The aggregate's kind (`consent`), from its first stored event's topic
    (`domain.consent:Consent.Requested`): nothing is opened."""
    first = app.recorder.select_events(originator, limit=1)
    return first[0].topic.partition(":")[2].split(".")[0].lower() if first else ""


def _created(app: Backcheck, route: CommandRoute, stored: list[tuple[UUID, int]]) -> UUID | None:
    """The aggregate the command created: the first it stored at version 1 of the kind its
    route's new id names (`consent_id`: a consent)."""
    if not route.created:
        return None
    field = route.new_id or path_ids(route.created)[-1]
    kind = field.removesuffix("_id")
    return next((o for o, v in stored if v == 1 and _kind(app, o) == kind), None)


def applied_before(
    app: Backcheck,
    route: CommandRoute,
    request: Request,
    error: CommandAlreadyAppliedError,
    event_ids: tuple[str, ...],
) -> Response:
    """The answer to the retry: `event_ids` are those its receipt names, the receipt's last."""
    stored = [_parsed(i) for i in event_ids[:MAX_EVENTS]]
    positions = chained(app.recorder).positions_of(stored)
    refs = [
        StoredEventRef(id=f"{o}:{v}", position=positions[(o, v)])
        for o, v in stored
        if (o, v) in positions
    ]
    headers = {"Idempotent-Replayed": "true"}
    created = _created(app, route, stored[:-1])
    if route.created and created is not None:
        ids: dict[str, Any] = {**request.path_params}
        ids[route.new_id or path_ids(route.created)[-1]] = created
        headers["Location"] = route.created.format(**ids)
    first = route.path_ids[0] if route.path_ids else None
    target = created or (UUID(request.path_params[first]) if first else None)
    written = [v for o, v in stored if o == target]
    if written and (tag := etag(max(written))) is not None:
        headers["ETag"] = tag
    body = AppliedBefore(
        outcome="applied-before",
        detail="this Idempotency-Key's command was applied before, and its first answer was "
        "lost before it could be kept; nothing was applied again: these are the events it "
        "stored",
        command_type=str(error.details.get("command_type", "")),
        applied_at=str(error.details.get("applied_at", "")),
        events=refs[:-1],
        receipt=refs[-1] if refs else None,
    )
    return Response(
        orjson.dumps(body.model_dump(mode="json")),
        201 if route.created else 200,
        headers,
        media_type=MEDIA_TYPE,
    )


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with pydantic's `#/$defs/X` references replaced by X: in the OpenAPI document a
    `#/...` reference is read from the document's root, where there are no `$defs`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def schema() -> dict[str, Any]:
    """The answer's JSON schema, whole (no references)."""
    found = AppliedBefore.model_json_schema()
    defs = found.pop("$defs", {})
    inlined: dict[str, Any] = _inlined(found, defs)
    return inlined


def documented(status: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry saying a command's success may come as this answer."""
    return {
        status: {
            "content": {MEDIA_TYPE: {"schema": schema()}},
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` on an answer given again for an Idempotency-Key "
                    "(the kept answer, or this one when it was lost)",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        }
    }
