"""Files written whole: aside under a name the call's alone, synced to disk, then put in
place, and the folder synced, so a crash leaves the old file or the new one, never an empty
or a partial one (a key file empty after a power cut would lose every data key wrapped by it).

Two threads or processes writing the same file each write their own draft (`mkstemp`, mode
600); the last to put its draft in place wins, or, with `replace=False`, the first, and the
others get `FileExistsError` (a key another writer made first is the key)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_whole(path: Path, data: bytes, *, replace: bool = True) -> None:
    """`data` at `path`, all of it or nothing. `replace`: a file there is replaced; else it
    stays, and FileExistsError says so."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    draft = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(draft, path)
        else:
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """The folder's entries (a file put in place) synced to disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
