"""Portal links handed on as files: DATA_DIR/outbox/portal-links/<candidate id>.json.

The embedded default of the link delivery (services/ports.py: LinkDelivery): a mailer, or an
operator, takes each file and sends the candidate their link. A file holds the candidate's id,
the link (its token in the URL's fragment) and when it expires. It is the owner's alone (mode
600, in directories of mode 700), and written whole or not at all: to a temporary file in the
same directory, then renamed over the candidate's previous link, which stopped working when
this one was issued. Anything that keeps it from being written is a LinkDeliveryError naming
the file (under the data directory, never its absolute path: the answer may go to a caller
over HTTP) and the reason, never the token.

Two links for one candidate issued at once (two consent requests) may reach the outbox in the
other order than they were recorded. The file also holds the link's `version` (its
principal's, services/ports.py), and a link never replaces a later one: the file is read,
compared and replaced holding a lock (`outbox/.portal-links.lock`, `flock`, so between
processes too), and what stays is the link that works.

When the candidate is erased their portal is closed for good (its principal revoked), and the
link waiting here is taken back (`withdraw`, under the same lock): a mailer must not send a
link that opens nothing, to someone the store no longer knows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import orjson

from services.ports import LinkDeliveryError, PortalLink

FOLDER = "portal-links"


class LinkOutbox:
    """Writes each portal link to `<outbox>/portal-links/<candidate id>.json`; `url` forms
    the link a token opens (infra/http/link.py, on the configured public URL)."""

    def __init__(self, outbox: Path, url: Callable[[str], str]) -> None:
        self.outbox = outbox
        self.directory = outbox / FOLDER
        self.url = url
        self._mutex = threading.Lock()  # flock does not exclude this process's other threads

    def deliver(self, link: PortalLink) -> str:
        name = f"{link.candidate_id}.json"
        path = self.directory / name
        shown = f"{self.outbox.name}/{FOLDER}"  # as the answer names it
        document = {
            "candidate_id": str(link.candidate_id),
            "url": self.url(link.token),
            "expires_at": link.expires_at.isoformat(),
            "version": link.version,
        }
        try:
            if not self.directory.is_dir():  # one look, not two mkdirs, once it exists
                self.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.directory.mkdir(mode=0o700, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise LinkDeliveryError(
                f"cannot make the directory {shown}: a file is in the way"
            ) from None
        except OSError as e:
            raise LinkDeliveryError(
                f"cannot make the directory {shown}: {e.strerror or e}"
            ) from None
        try:
            with self._locked():
                if _version_in(path) > link.version:
                    return f"{shown}/{name} (replaced there by a later link, the one that works)"
                _write_whole(path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
        except OSError as e:
            raise LinkDeliveryError(f"cannot write {shown}/{name}: {e.strerror or e}") from None
        return f"{shown}/{name}"

    def withdraw(self, candidate_id: UUID) -> str | None:
        name = f"{candidate_id}.json"
        shown = f"{self.outbox.name}/{FOLDER}/{name}"
        if not self.directory.is_dir():  # nothing was ever sent: no lock file made for it
            return None
        try:
            with self._locked():
                (self.directory / name).unlink()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LinkDeliveryError(f"cannot remove {shown}: {e.strerror or e}") from None
        return shown

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The outbox's links to one writer at a time, in this process and between processes."""
        with self._mutex:
            lock = os.open(
                self.outbox / f".{FOLDER}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock)  # lets the lock go


def _version_in(path: Path) -> int:
    """The version of the link a file holds: 0 for none, or one written before versions
    were (or that cannot be read: it is replaced)."""
    try:
        version = orjson.loads(path.read_bytes()).get("version", 0)
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return 0
    return version if isinstance(version, int) else 0


def _write_whole(path: Path, data: bytes) -> None:
    """`data` at `path`, or the file there untouched: written to a temporary file of mode 600
    beside it, made durable, then renamed into place. The temporary file's name is fixed: the
    caller holds the outbox's lock, so no one else writes it meanwhile (one left by a crash is
    written over), and no name is drawn and tried as `mkstemp` does."""
    temporary = path.with_name(f".{path.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # one left behind by a crash keeps its mode
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
