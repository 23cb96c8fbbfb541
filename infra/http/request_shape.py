"""What a request to the API must look like before any of its values is read.

- **A body is JSON, and says so.** Its `Content-Type` is `application/json` (or a `+json`
  type); a body sent as anything else, or with no `Content-Type` at all, is 415 Unsupported
  Media Type (RFC 9110 15.5.16), naming the type the API takes: a client says what it sends,
  and the server never guesses (a form or a text body was read as JSON, or refused as invalid
  JSON, before).

- **An object names each member once.** `{"name": "a", "name": "b"}` is JSON a parser may
  read either way (RFC 8259 4: names SHOULD be unique; most keep the last, some the first):
  what the client meant and what was checked could differ. It is 422, rule `duplicate_key`,
  the field the member's path (`terms.purposes`, `claims.0.fields.1.name`).

- **The query names only what the operation takes, each once.** `?limt=5` was ignored (the
  page came back at the default size, as if the limit had been read) and `?limit=5&limit=6`
  took the last: both are 422, rule `unknown_parameter` or `repeated_parameter`, the field
  the parameter's name. (Every query parameter of this API is one value.)

Each route checks these only once its caller is known and permitted (a 401 or a 403 comes
first, whatever the request looks like): the table's commands and reads in
infra/http/routes.py, the routes FastAPI serves through `checked_first` (infra/http/auth.py),
and the one `/v1` route that needs no caller through `Shaped`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from infra.http.problems import field_errors, invalid, problem_response

JSON_MEDIA = "application/json"
_SHOWN = 100  # of a Content-Type quoted back: enough to recognise it
_LISTED = 20  # query parameters refused in one answer, at most (a URL may name thousands)


def is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, parameters aside; nothing said is not JSON."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def unsupported_media_type(request: Request) -> JSONResponse | None:
    """The 415 for a request with a body not said to be JSON; None when it is said to be."""
    sent = request.headers.get("content-type")
    if is_json(sent):
        return None
    said = (
        f"as {sent[:_SHOWN]!r}" if sent else "without a Content-Type (a client says what it sends)"
    )
    return problem_response(
        415,
        "Unsupported media type",
        "unsupported-media-type",
        f"the body was sent {said}; this API takes JSON: send it with "
        f"`Content-Type: {JSON_MEDIA}`. Nothing was read or recorded",
        request,
        # the media types a POST here takes (the W3C's Accept-Post, in the IANA registry)
        {"Accept-Post": JSON_MEDIA},
        rule="unsupported-media-type",
        accepted=[JSON_MEDIA],
    )


class _Members(dict[str, Any]):
    """A JSON object as parsed, with the names it gave more than once."""

    repeated: tuple[str, ...] = ()


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members()
    repeated: list[str] = []
    for name, value in pairs:
        if name in members and name not in repeated:
            repeated.append(name)
        members[name] = value
    members.repeated = tuple(repeated)
    return members


def duplicate_keys(raw: bytes) -> list[dict[str, Any]]:
    """Each member a JSON body names twice in one object, as a validation error (pydantic's
    shape: `type`, `loc` under "body", `msg`); none for a body that is not JSON, which is
    said where it is parsed."""
    try:
        parsed = json.loads(raw, object_pairs_hook=_members)
    except ValueError:
        return []
    except RecursionError:  # deeper than this parser goes (orjson, which read it, goes further)
        return [{"type": "json_invalid", "loc": ("body",), "msg": "the body nests too deeply"}]
    found: list[dict[str, Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), parsed)]
    while stack:  # by hand, not by recursion: as deep as the body goes
        path, value = stack.pop()
        if isinstance(value, _Members):
            found += [
                {
                    "type": "duplicate_key",
                    "loc": ("body", *path, name),
                    # the member is named by the error's field (cut at MAX_FIELD), not again
                    "msg": "given more than once in one object: name each member once (which "
                    "one counts is not said by JSON)",
                }
                for name in value.repeated
            ]
            stack += [((*path, k), v) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            stack += [((*path, i), v) for i, v in reversed(list(enumerate(value)))]
    return found


def query_pairs(request: Request) -> list[tuple[str, str]]:
    """The query's parameters in order, as Starlette reads them (blanks kept, repeats too)."""
    return parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)


def query_errors(pairs: list[tuple[str, str]], taken: Collection[str]) -> list[dict[str, Any]]:
    """Each parameter the operation does not take, or is given more than once, as a
    validation error (`loc` under "query": its field is the parameter's name)."""
    given = Counter(name for name, _ in pairs)
    listed = sorted(taken)
    found: list[dict[str, Any]] = []
    for name, times in given.items():
        if name not in taken:
            rule = "unknown_parameter"
            # the parameter is named by the error's field (cut at MAX_FIELD), not here again
            message = "this operation takes no such parameter; " + (
                f"it takes {', '.join(listed)}" if listed else "it takes none"
            )
        elif times > 1:
            rule = "repeated_parameter"
            message = f"given {times} times: give it once"
        else:
            continue
        found.append({"type": rule, "loc": ("query", name), "msg": message})
    return found[:_LISTED]


def taken_by(route: APIRoute) -> frozenset[str]:
    """The query parameters a route FastAPI serves takes: its own and its dependencies'."""
    names: set[str] = set()
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop()
        names.update(field.alias for field in dependant.query_params)
        dependants.extend(dependant.dependencies)
    return frozenset(names)


async def refusal(request: Request, taken: Collection[str]) -> Response | None:
    """What is wrong with the request's shape, as its problem: a body not said to be JSON
    (415), else each unknown or repeated parameter and each member named twice (one 422
    listing them all); None when nothing is."""
    raw = await request.body()
    if raw and (unsupported := unsupported_media_type(request)) is not None:
        return unsupported
    wrong = query_errors(query_pairs(request), taken) + (duplicate_keys(raw) if raw else [])
    return invalid(request, field_errors(wrong)) if wrong else None


class Shaped(APIRoute):
    """A route FastAPI serves to anyone (no caller to check first): its request's shape is
    checked before FastAPI's handler reads it."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        taken = taken_by(self)

        async def shaped(request: Request) -> Response:
            refused = await refusal(request, taken)
            return refused if refused is not None else await handler(request)

        return shaped
