"""What a command's request says, read only once its caller is known.

A command route is served direct (infra/http/routes.py): its credential is checked before
anything in its body is parsed, so a caller without a valid token is told 401 and learns
nothing of the body's rules, and the server spends no parsing on it. Then this module reads
what FastAPI's own handler would have: the path's ids, the query (which a command leaves
empty), the `Idempotency-Key` and `If-Match` headers and the JSON body, each checked by the
same constraints the OpenAPI document declares, every broken one named with its field and
rule (pydantic's error types), all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Header, Request
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError, create_model

from domain.errors import PickledAsItIs
from infra.http.idempotency import MAX_KEY
from infra.http.request_shape import duplicate_keys, query_errors, query_pairs
from services import dto
from services.catalogue import UseCase
from services.versions import Expected, WeakTag

KEY_HEADER = "Idempotency-Key"
IF_MATCH_HEADER = "If-Match"
_KEY_PATTERN = r"^[\x21-\x7e]+$"
_IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"[0-9]{1,18}")\s*$'
_IF_MATCH_MAX = 40
_EMPTY_KEY = (
    f"an {KEY_HEADER} is 1 to {MAX_KEY} visible ASCII characters: an empty one is refused, "
    "not taken as no key (send no header for no key)"
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        max_length=MAX_KEY,
        pattern=_KEY_PATTERN,
        description="a key of your own for this command: sent again, the command is not "
        "applied twice and the first answer comes back",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias=IF_MATCH_HEADER,
        max_length=_IF_MATCH_MAX,
        pattern=_IF_MATCH_PATTERN,
        description='the ETag you read (`"<version>"`): refused with 412 if the resource '
        'changed since; a weak tag (`W/"<version>"`) never matches, and a command that '
        "creates its resource takes none",
    ),
]
_HEADERS: dict[str, TypeAdapter[str]] = {
    KEY_HEADER: TypeAdapter(
        Annotated[str, StringConstraints(max_length=MAX_KEY, pattern=_KEY_PATTERN)]
    ),
    IF_MATCH_HEADER: TypeAdapter(
        Annotated[str, StringConstraints(max_length=_IF_MATCH_MAX, pattern=_IF_MATCH_PATTERN)]
    ),
}
_ID: TypeAdapter[UUID] = TypeAdapter(UUID)
# What no request sends: filled in from the authenticated principal (infra/http/routes.py).
FILLED = frozenset({"actor", "principal", "role"})


def expected_version(if_match: str | None) -> Expected | None:
    """The version an `If-Match` names, a weak tag's as such (it matches none); None: `*`
    (any current version: the use case finds the aggregate, or says it is not there), or none
    sent."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip()
    text = tag.removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ValueError(f'If-Match: {if_match!r} is not an ETag this API gave ("<version>")')
    return WeakTag(int(text)) if tag.startswith("W/") else int(text)


@cache
def body_model(use_case: UseCase, path_ids: tuple[str, ...]) -> type[BaseModel]:
    """The command's DTO without what the request does not send: the path's ids, the actor."""
    command = use_case.command
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in FILLED and name not in path_ids
    }
    model: type[BaseModel] = create_model(
        command.__name__ + "Body", __base__=dto.Command, __doc__=command.__doc__, **fields
    )
    return model


def required_body(model: type[BaseModel]) -> bool:
    """Whether the command needs a body: some field of it is required."""
    return any(f.is_required() for f in model.model_fields.values())


@dataclass(frozen=True)
class CommandInput:
    body: BaseModel | None
    ids: dict[str, UUID]
    key: str | None
    if_match: str | None


class InvalidCommandInput(PickledAsItIs, Exception):  # noqa: N818  (answered as a 422 problem)
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def _located(where: tuple[str, ...], error: ValidationError) -> list[dict[str, Any]]:
    return [{**e, "loc": (*where, *e["loc"])} for e in error.errors()]


def _body(raw: bytes, model: type[BaseModel], required: bool) -> Any:
    """The body as `model`, or None when none was sent (and none is needed); raises
    InvalidCommandInput naming what is wrong with it. (Its media type was checked before:
    infra/http/request_shape.py.)"""

    def wrong(rule: str, message: str) -> InvalidCommandInput:
        return InvalidCommandInput([{"type": rule, "loc": ("body",), "msg": message}])

    data: Any = None
    if raw:
        try:
            raw.decode()
        except UnicodeDecodeError:
            raise wrong(
                "json_invalid",
                "the body is not JSON: JSON is text in UTF-8 (RFC 8259), and these bytes are not",
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise wrong("json_invalid", f"the body is not JSON: {e}") from None
        if repeated := duplicate_keys(raw):
            raise InvalidCommandInput(repeated)
    if data is None:
        if required:
            raise wrong("missing", "Field required")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InvalidCommandInput(_located(("body",), e)) from None


def read_command(
    request: Request, raw: bytes, path_ids: tuple[str, ...], model: type[BaseModel], required: bool
) -> CommandInput:
    """The command's path ids, headers and body, checked; raises InvalidCommandInput with
    every error found (`loc` and `type` as FastAPI gives them: infra/http/problems.py turns
    them into fields and rules)."""
    errors: list[dict[str, Any]] = []
    ids: dict[str, UUID] = {}
    for name in path_ids:
        try:
            ids[name] = _ID.validate_python(request.path_params[name])
        except ValidationError as e:
            errors.extend(_located(("path", name), e))
    headers: dict[str, str | None] = {}
    for name, adapter in _HEADERS.items():
        value = request.headers.get(name)
        if name == KEY_HEADER and value is not None and not value.strip():
            # An empty key is a mistake, not a request for none: sent twice it would apply
            # the command twice. Refused as the bounds are, naming the header and the rule.
            errors.append({"type": "string_too_short", "loc": ("header", name), "msg": _EMPTY_KEY})
            continue
        try:
            headers[name] = None if value is None else adapter.validate_python(value)
        except ValidationError as e:
            errors.extend(_located(("header", name), e))
    errors.extend(query_errors(query_pairs(request), ()))  # a command takes none
    body: BaseModel | None = None
    try:
        body = _body(raw, model, required)
    except InvalidCommandInput as e:
        errors.extend(e.errors)
    if errors:
        raise InvalidCommandInput(errors)
    return CommandInput(body, ids, headers[KEY_HEADER], headers[IF_MATCH_HEADER])
