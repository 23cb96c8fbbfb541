"""The shapes every command and result shares: the bounds on text and lists, the kinds of
text, moments, and the two base classes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.classification import CATEGORIES
from services.text import LINES, ordinary_text

# Every string and list has a bound (tests/unit/test_input_bounds.py walks every command's
# schema); `backcheck use-cases --schema NAME` shows them as maxLength and maxItems. A command
# within them can still make an event over the store's size limit: that is refused whole.
MAX_TERMS = 50  # purposes, check types, categories, roles, organisations, methods, people
MAX_CHECKS = 50  # checks planned in one investigation; amendments of one report edition
MAX_CLAIMS = 50  # claims in one submission
MAX_FIELDS = 50  # personal fields in one claim

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Prose = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), LINES
]
Actor = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(description="who is acting, e.g. 'hr:li.na' or 'candidate'"),
]
CategoryKey = Annotated[
    str,
    StringConstraints(max_length=100, pattern=r"^user(\.[a-z_]+)+$"),
    # A service sees only the published schemas: the categories are named there, not only by
    # `backcheck categories` on the operator's machine.
    Field(
        description="a data category, one of (tier): "
        + ", ".join(f"{c.key} ({c.tier.value})" for c in CATEGORIES.values())
        + "; prohibited ones are refused at collection"
    ),
]

_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_moment(value: object) -> object:
    """A moment is given as ISO 8601 text (or as a datetime, in process): not a number,
    which pydantic would take as Unix time, nor a date alone."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_MOMENT.match(value)):
        return value
    raise PydanticCustomError(
        "iso_moment",
        "an ISO 8601 date and time with its offset is expected, e.g. 2026-11-22T10:00:00+00:00",
    )


# A moment a caller gives: with its offset, or it is refused (pydantic's `timezone_aware`),
# never stored as a naive time that no aware one can be compared with.
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_moment)]


class Command(BaseModel):
    """A use case's input. No text in it holds a control character (the value is never
    repeated in the error): tab and line feed only in free-text fields (`Prose`, marked
    `LINES`), nothing of the kind anywhere else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="wrap")
    @classmethod
    def _ordinary_text(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return ordinary_text(cls, value, handler, info)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
