"""SQLite statements that write many rows at once.

Each statement sent to SQLite is a step that lets go of the GIL; with many threads waiting
for it, every step costs the writer — who holds the file's write lock meanwhile — a wait to
get the GIL back. So a write of many rows goes as few multi-row statements as SQLite allows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")

MAX_PARAMETERS = 32_766  # SQLite's limit of parameters a statement (since 3.32)


def chunks(rows: Sequence[T], columns: int) -> Iterator[Sequence[T]]:
    """`rows` in runs that fit in one statement of `columns` parameters a row."""
    size = MAX_PARAMETERS // columns
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@lru_cache(maxsize=128)
def values(columns: int, rows: int) -> str:
    """`VALUES (?,?),(?,?)...` for `rows` rows of `columns` values."""
    one = "(" + ",".join("?" * columns) + ")"
    return "VALUES " + ",".join([one] * rows)
