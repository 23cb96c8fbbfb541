"""The text rule every command obeys: no control character in any of its texts.

Control characters have no place in a record of who did what: PostgreSQL's jsonb refuses NUL
outright (one such value made every view write fail), and the others reach terminals and logs.
Free-text fields (marked `LINES`) may hold tab and line feed; every other text is one line.
The error names where the character is, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationInfo, ValidatorFunctionWrapHandler
from pydantic_core import PydanticCustomError


class SpansLines:
    """Marks a free-text field (notes, statements, answers): tab and line feed are allowed in
    it. Every other text of a command is one line."""


LINES = SpansLines()


# Control characters: C0 (NUL to U+001F), DEL, C1 (U+0080 to U+009F), and lone surrogates,
# which no UTF-8 store can hold. PostgreSQL's jsonb refuses NUL outright.
# And the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
# make a record show in another order than it holds ("Trojan source"); the marks LRM and RLM,
# which right-to-left names may need, stay.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_SPANNING_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")


def _marked(annotation: object) -> bool:
    return annotation is LINES or any(_marked(a) for a in get_args(annotation))


@cache
def _spans_lines(model: type[BaseModel], name: str) -> bool:
    info = model.model_fields[name]
    return any(m is LINES for m in info.metadata) or _marked(info.annotation)


def _texts(value: object, *, into_dicts: bool, at: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a field's value, with where it is (`[2]`, `[key]`); a sub-command
    checks its own fields, so models (and, before validation, the documents that become
    them) are left to it."""
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield from _texts(item, into_dicts=into_dicts, at=f"{at}[{i}]")
    elif isinstance(value, dict) and into_dicts:
        for key, item in value.items():
            yield from _texts(key, into_dicts=True, at=at)
            yield from _texts(item, into_dicts=True, at=f"{at}[{key}]")


def _not_utf8(char: str, at: str, position: int) -> PydanticCustomError:
    """A lone surrogate: on a command line or in a file read with Python's surrogate escapes,
    a byte that is not UTF-8 (0x80-0xFF becomes U+DC80-U+DCFF); said as that byte."""
    code = ord(char)
    what = (
        f"byte 0x{code - 0xDC00:02X}, which is not UTF-8,"
        if 0xDC80 <= code <= 0xDCFF
        else f"lone surrogate U+{code:04X}, which UTF-8 cannot hold,"
    )
    return PydanticCustomError(
        "not_utf8",
        "{what}{at} at position {position}: text must be UTF-8",
        {"what": what, "at": at and f" in {at}", "position": position},
    )


def _refuse_control_characters(value: object, pattern: re.Pattern[str], into_dicts: bool) -> None:
    for at, text in _texts(value, into_dicts=into_dicts):
        found = pattern.search(text)
        if found and "\ud800" <= found.group() <= "\udfff":
            raise _not_utf8(found.group(), at, found.start())
        if found and found.group() >= "\u202a":  # the bidirectional controls (`_BIDI`)
            raise PydanticCustomError(
                "bidi_control",
                "bidirectional control {char}{at} at position {position}: it would show the "
                "text in another order than it is recorded",
                {
                    "char": f"U+{ord(found.group()):04X}",
                    "at": at and f" in {at}",
                    "position": found.start(),
                },
            )
        if found:
            raise PydanticCustomError(
                "control_character",
                "control character {char}{at} at position {position}: only ordinary text "
                "is accepted",
                {
                    "char": f"U+{ord(found.group()):04X}",
                    "at": at and f" in {at}",
                    "position": found.start(),
                },
            )


def ordinary_text(
    model: type[BaseModel],
    value: Any,
    handler: ValidatorFunctionWrapHandler,
    info: ValidationInfo,
) -> Any:
    """A field's value validated, refused if any text in it holds a control character: as
    given (before whitespace is stripped) and as validated (a dict field's keys and values)."""
    lines = info.field_name is not None and _spans_lines(model, info.field_name)
    pattern = _SPANNING_LINES if lines else _ONE_LINE
    _refuse_control_characters(value, pattern, into_dicts=False)
    validated = handler(value)
    _refuse_control_characters(validated, pattern, into_dicts=True)
    return validated
