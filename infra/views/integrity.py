"""Every stored view row carries a MAC: a row changed outside backcheck is refused, not read.

Reads are decided on the views (a consent's status, its scope, its withdrawal), so a views
file or table altered by hand would decide them: a withdrawal set back to null would return
the candidate's data to whoever asks, and the event store's chain would still verify. Each
row is therefore written with an HMAC-SHA256 of its view, key, subject and document, under a
key of its own: a data key in the key table like any other (`ROWS_SUBJECT`, scope
`ROWS_SCOPE`), wrapped by the master key, so it is rewrapped by `keys rotate-master` and is
never held in clear at rest. Whoever can write the views but not unwrap keys cannot make a
row that passes.

A row whose MAC does not match is `ViewRowAlteredError`: the read stops (nothing is shown),
and so does the projection that would have read it to change it (it would otherwise write the
altered value back under a new MAC). `backcheck views rebuild` writes every row again from
the event store, which is the remedy the error names.

The MAC is over the document as the codec writes it (keys sorted, `codec.py`): on SQLite the
stored bytes themselves; PostgreSQL keeps documents as jsonb and gives them back in its own
layout, so there the document is put back in the codec's form before it is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.access import ReadFailure
from services.errors import StoredDataAlteredError

# a version-5 id, so never a candidate's (theirs are version 4, services/dto/candidates.py)
ROWS_SUBJECT = uuid5(NAMESPACE_URL, "urn:backcheck:views:rows")
ROWS_SCOPE = "views.rows"


class ViewRowAlteredError(RuntimeError, StoredDataAlteredError):
    """A stored view row does not match its MAC: changed, moved or written outside backcheck."""

    failure = ReadFailure.VIEWS_ALTERED.value

    def __init__(self, view: str, key: str, why: str) -> None:
        self.view = view
        self.key = key
        self.why = why
        super().__init__(
            f"the stored row {key!r} of view {view!r} {why}: the views were altered outside "
            f"backcheck; nothing was read from it. Rebuild them from the event store with "
            f"`backcheck views rebuild`"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as it is (errors cross processes), not by calling `__init__` with `args`,
        which hold the message, not the view, key and why: made again without it, then given
        back its attributes. A copy `noted` (services/errors.py) keeps its own line so."""
        return (_rebuilt, (type(self), *self.args), self.__dict__)


def _rebuilt(cls: type[ViewRowAlteredError], *args: object) -> ViewRowAlteredError:
    return cls.__new__(cls, *args)  # BaseException.__new__ sets `args`; pickle the rest


def _message(view: str, key: str, subject: str, body: bytes) -> bytes:
    v, k, s = view.encode(), key.encode(), subject.encode()
    return b"".join(
        (
            len(v).to_bytes(4, "big"),
            v,
            len(k).to_bytes(4, "big"),
            k,
            len(s).to_bytes(4, "big"),
            s,
            body,
        )
    )


class RowSeal:
    """Makes and checks the MACs of view rows; the key is fetched (made on first use) from
    `key()` once, then held for the life of the codec."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._fetch = key
        self._keyed: hmac.HMAC | None = None
        self._lock = threading.Lock()

    def _keyed_mac(self) -> hmac.HMAC:
        """HMAC-SHA256 keyed once, copied for each row."""
        if self._keyed is None:
            with self._lock:
                if self._keyed is None:
                    self._keyed = hmac.new(self._fetch(), digestmod=hashlib.sha256)
        return self._keyed

    def mac(self, view: str, key: str, subject: str, body: bytes) -> bytes:
        keyed = self._keyed_mac().copy()
        keyed.update(_message(view, key, subject, body))
        return keyed.digest()

    def check(self, view: str, key: str, subject: str, body: bytes, mac: bytes | None) -> None:
        if mac is None:
            raise ViewRowAlteredError(view, key, "has no MAC")
        if not hmac.compare_digest(self.mac(view, key, subject, body), bytes(mac)):
            raise ViewRowAlteredError(view, key, "does not match its MAC")
