"""The port a projection writes through, and an in-memory implementation of it.

A view is a set of rows, each a JSON-like document under a key, belonging to one subject
(candidate). Projections see only this interface, so the same projection code writes to the
in-memory rows of a test, to SQLite or PostgreSQL in-process, or to the database of a stream
worker. Documents are plain JSON values (str, int, float, bool, None, list, dict) plus
`PersonalField`, which a durable store seals with the subject's key instead of writing it out.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any, Protocol
from uuid import UUID

Doc = dict[str, Any]


@functools.lru_cache(maxsize=4096)
def ident(value: UUID) -> str:
    """An id as rows hold it (its text): asked several times for each event applied (its
    subject's rows, keys and documents), and a UUID's text is made anew on every `str`."""
    return str(value)


class Rows(Protocol):
    """Read and write access to view rows inside one transaction."""

    def get(self, view: str, key: str) -> Doc | None: ...

    def put(self, view: str, key: str, subject: UUID, doc: Doc) -> None: ...

    def delete(self, view: str, key: str) -> None: ...

    def of_subject(self, view: str, subject: UUID) -> list[Doc]: ...


class MemoryRows:
    """Rows in a dict: the fake for tests, and the reference the durable stores must equal.
    Documents are copied in and out, as a store that serialises them would."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], tuple[str, Doc]] = {}

    def get(self, view: str, key: str) -> Doc | None:
        row = self.data.get((view, key))
        return copy.deepcopy(row[1]) if row else None

    def put(self, view: str, key: str, subject: UUID, doc: Doc) -> None:
        self.data[(view, key)] = (str(subject), copy.deepcopy(doc))

    def delete(self, view: str, key: str) -> None:
        self.data.pop((view, key), None)

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        s = str(subject)
        return [
            copy.deepcopy(doc)
            for (v, _), (owner, doc) in sorted(self.data.items())
            if v == view and owner == s
        ]

    def dump(self) -> Iterator[tuple[str, str, str, Doc]]:
        for (view, key), (subject, doc) in sorted(self.data.items()):
            yield view, key, subject, copy.deepcopy(doc)
