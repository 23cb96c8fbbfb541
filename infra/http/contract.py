"""`GET /v1/contract/asyncapi.json`: the AsyncAPI 3 document of backcheck's Kafka topics.

A service team reads it where backcheck runs, the version they talk to, without a checkout
(`backcheck contract` writes the same document). It is served without authentication: it is
made from the code alone (message names and schemas) and holds no data of any store.
"""

from __future__ import annotations

from functools import cache

import orjson
from fastapi import FastAPI, Response

from infra.contract.asyncapi import asyncapi_document
from infra.http.request_shape import Shaped
from infra.http.routes import PROBLEMS

PATH = "/v1/contract/asyncapi.json"


@cache
def _body() -> bytes:
    return orjson.dumps(asyncapi_document())  # made once per process: the code does not change


def install(app: FastAPI) -> None:
    def asyncapi() -> Response:
        return Response(_body(), media_type="application/json")

    app.router.add_api_route(
        PATH,
        asyncapi,
        route_class_override=Shaped,  # no caller to check; its query is held to none
        methods=["GET"],
        tags=["contract"],
        summary="the AsyncAPI 3 document of the Kafka topics",
        description="The topics backcheck publishes and reads (events, commands, command "
        "outcomes, dead letters), each message with the JSON Schema of its headers and "
        "payload, generated from the code. No authentication: the document holds no data, "
        "only the names and shapes of messages, the same for every store.",
        responses={200: {"content": {"application/json": {}}}, 422: PROBLEMS[422]},
    )
