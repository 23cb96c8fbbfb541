"""The table's reads as routes (infra/http/table.py READS): a GET whose query parameters are
the read's own fields, its principal and role the caller's.

A read is served direct (infra/http/read_path.py finds it ahead of the router): its caller
identified in the worker thread, then its query held to the parameters it takes (each once:
infra/http/request_shape.py), then the path and query handed to the use case's DTO as they
came, which checks them and names the field, as for any transport. Its answer carries the
version of exactly what it shows as its ETag.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request, Response
from pydantic import StringConstraints

from infra.http import examples
from infra.http.command_input import FILLED
from infra.http.endpoints import Endpoints, etag
from infra.http.problems import error_response, field_errors, invalid
from infra.http.request_shape import query_errors, query_pairs
from infra.http.table import ReadRoute
from services.catalogue import USE_CASES
from services.identity import acting_as
from services.shown import showing

_QUERY_HELP = {
    "purpose": "why you read it; recorded with the read",
    "break_glass": "compliance only: the justification to record with the read",
}


def _query_type(annotation: Any, required: bool) -> Any:
    """A query parameter's type: times and ids as such, text bounded (its DTO checks the
    rest and names the field)."""
    base = annotation if annotation in (datetime, UUID, bool, int) else _Bounded
    return base if required else base | None


_Bounded = Annotated[str, StringConstraints(max_length=2000)]


class ReadRoutes(Endpoints):
    """The reads of the table, each a route the Api installs (infra/http/routes.py)."""

    def run_read(
        self,
        route: ReadRoute,
        request: Request,
        credential: str,
        ids: dict[str, str],
        sent: list[tuple[str, str]],
        taken: frozenset[str],
    ) -> Response:
        use_case = USE_CASES[route.use_case]
        identity = self.authenticator.identify(credential)
        if wrong := query_errors(sent, taken):  # the caller known first: a 401 says nothing
            return invalid(request, field_errors(wrong))
        payload: dict[str, Any] = {
            **dict(sent),
            **ids,
            "principal": identity.principal,
            "role": identity.role.value,
        }
        try:
            with acting_as(identity), showing() as shown:
                result = use_case.run(self.application, payload)
        except Exception as e:
            return error_response(request, e)
        headers: dict[str, str] = {"Cache-Control": "no-store"}
        # the version of what is answered, from the row it was answered from: never newer
        # than the data shown, and no store read of its own (services/shown.py)
        if (tag := etag(shown.version)) is not None:
            headers["ETag"] = tag
        return Response(result.model_dump_json(), 200, headers, media_type="application/json")

    def read_endpoint(self, route: ReadRoute) -> Callable[..., Awaitable[Response]]:
        """A GET whose query parameters are the read's own fields (purpose, and what else it
        takes), checked by its DTO as any transport's command is."""
        use_case = USE_CASES[route.use_case]
        ids = route.path_ids
        fields = {
            name: info
            for name, info in use_case.command.model_fields.items()
            if name not in FILLED and name not in ids
        }
        api = self

        taken = frozenset(fields)

        async def serve(request: Request, found: dict[str, str]) -> Response:
            """The read, its path's ids as they came (infra/http/read_path.py finds them)."""
            credential = api.authenticator.credential(request)
            sent = query_pairs(request)
            return await api.offload(api.run_read, route, request, credential, found, sent, taken)

        async def direct(request: Request) -> Response:
            return await serve(request, {name: request.path_params[name] for name in ids})

        async def endpoint(request: Request, **params: Any) -> Response:
            """Its signature documents the route; served, it is `direct` (DirectRoute)."""
            return await direct(request)

        parameters = [
            *self._caller_and_ids(ids),
            *[
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Annotated[
                        _query_type(info.annotation, info.is_required()),
                        Query(
                            description=_QUERY_HELP.get(name, info.description),
                            openapi_examples=examples.query(use_case.name, name),
                        ),
                    ],
                    **({} if info.is_required() else {"default": None}),
                )
                for name, info in fields.items()
            ],
        ]
        endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        endpoint.__name__ = use_case.method
        endpoint.__doc__ = use_case.summary
        endpoint.direct = direct  # type: ignore[attr-defined]
        endpoint.read = serve  # type: ignore[attr-defined]
        return endpoint
