"""One writer at a time on a SQLite file, across processes, handed over without sleeping.

SQLite lets one connection write at a time. A second writer (another process on the same
store: a second intake, a CLI command, another worker) that finds the file locked is put to
sleep by SQLite's busy handler for 1, 2, 5, 10… milliseconds and tries again; with several
processes writing all the time, those sleeps cost more than the writes. Here a writer first
takes an advisory lock on a file beside the database (`flock`): the kernel wakes the next
waiter the moment the lock is let go. Threads of one process take a mutex first, since
`flock` does not exclude holders of the same open file.

Every writer through our recorders, key table and view stores takes it; a writer that does
not (a plain `sqlite3` session) is still kept out by SQLite's own lock, as before. Like
SQLite's WAL mode itself, it holds between processes of one machine on a local file system.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path


class WriterLock:
    def __init__(self, database: str | Path) -> None:
        self.path = Path(f"{database}.writer-lock")
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._pid != os.getpid():
            # a forked child: its copy of the mutex may be held by a thread it does not
            # have, and the open file it inherited shares the parent's lock
            self._mutex, self._fd, self._pid = threading.Lock(), None, os.getpid()
        with self._mutex:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits in the kernel, without the GIL
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._mutex:
            self._close()

    def __del__(self) -> None:  # with the recorder or view store that held it
        self._close()

    def _close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class NoLock:
    """An in-memory database: no other process can open it, so there is nothing to take."""

    path = None

    def held(self) -> AbstractContextManager[None]:
        return nullcontext()


def for_database(db_name: str) -> WriterLock | NoLock:
    """The writer lock of a SQLite database file (none to take for an in-memory one)."""
    if db_name in ("", ":memory:") or "mode=memory" in db_name:
        return NoLock()
    path = db_name.removeprefix("file:").split("?", 1)[0]
    return WriterLock(path)


class AlreadyRunningError(Exception):
    """Something that runs alone on a store (a demo) found another one running there."""


@contextmanager
def running_alone(path: Path, what: str) -> Iterator[None]:
    """Holds an exclusive lock on `path` while `what` runs; if another process holds it, fails
    at once (AlreadyRunningError) rather than wait. The kernel lets go of a crashed holder's
    lock, so nothing is left to clean up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunningError(
                f"another {what} is running in {path.parent} (it holds {path.name}); "
                "try again when it is done"
            ) from None
        yield
    finally:
        os.close(fd)
