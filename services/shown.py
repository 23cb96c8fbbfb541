"""The version of what a read answers, as the views it was decided on held it.

An entry point that gives a read's answer a version (HTTP's `ETag`) runs the read inside
`showing()`; the read notes the version of the aggregate whose row it answers from
(`shows`), taken from that very row (projections/versions.py). So the version is never
newer than the data shown, and costs no store read of its own. A read is decided in its own
caller's context, wherever its batch is decided (services/queries.py), so the note reaches
the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass
class Shown:
    """The version of the aggregate the answer shows; None: the read noted none."""

    version: int | None = None


_shown: ContextVar[Shown | None] = ContextVar("shown", default=None)


@contextmanager
def showing() -> Iterator[Shown]:
    """Reads run inside note the version of what they answer in the `Shown` yielded."""
    shown = Shown()
    token = _shown.set(shown)
    try:
        yield shown
    finally:
        _shown.reset(token)


def shows(row: dict[str, Any]) -> None:
    """The read being decided answers from `row`, an aggregate's own row of the views."""
    shown = _shown.get()
    if shown is not None:
        shown.version = row.get("version")
