"""Files the audit tools write (evidence bundles, signed checkpoints): checked before anything
is recorded, and written whole or not at all.

An output path is refused when it names a file that exists (unless `force`), a directory, a
file in a directory that does not exist (none is made for an output: a mistyped one would hide
the file), or a place where no file can be made; it is refused even with `force` when it names
one of the store's own files, a key, or a checkpoint kept in DATA_DIR/checkpoints (a kept
checkpoint may only be written again with the very same content). The store's own files are
known by their names beside it: the event store, every store named after it
(`<store>.NAME.sqlite`: its views, the relay's state, the projection workers' stores of every
version) and every file the app keeps for it (`<store file>.WHAT`: its writer lock, the kept
HTTP answers and portal sessions, the demo's and the relays' locks), with their WAL, journal
and lock files. A file is written to a temporary file in its own directory, then renamed into
place, so a crash leaves either the old file or the new one, never half of it. A document that
holds nothing secret (the AsyncAPI contract, its fingerprints) is written in place with the
umask's mode, once the same check of its directory passed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from infra.config import Settings

FORCE_HINT = "--force to replace it"
_BESIDE = ("-wal", "-shm", "-journal", ".writer-lock")  # a SQLite file's own files


class OutputPathError(Exception):
    """An output path that cannot or must not be written; the message names it and the fix."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # a symlink loop, say: compare the names as given
        return a.absolute() == b.absolute()


def protected_paths(settings: Settings) -> list[Path]:
    """The store's own files and the keys: never the target of an output, even with force."""
    paths = [settings.master_key_path, settings.signing_key_path, settings.verify_key_path]
    if settings.backend == "sqlite":
        for store in (
            settings.sqlite_path,
            settings.views_path,
            settings.dashboard_path,
            settings.relay_state_path,
        ):
            paths.append(store)
            paths.extend(Path(f"{store}{suffix}") for suffix in _BESIDE)
    return paths


def _named_after_store(settings: Settings, path: Path) -> bool:
    """Whether `path` is a file named after the embedded store beside it: a store of its own
    (`Settings.beside_store`) or one of its WAL, journal and lock files, or any file the app
    keeps for the store (`Settings.after_store`: the kept HTTP answers and portal sessions,
    the demo's and the relays' locks, and their own WAL files). The projection workers'
    stores are among them under a name that changes with their projection's version
    (infra/views/kept.py, which this adapter does not import): whichever version's, and those
    of earlier versions left in place, each is the store's own."""
    if settings.backend != "sqlite" or not _same(path.parent, settings.sqlite_path.parent):
        return False
    name = path.name
    for suffix in _BESIDE:
        name = name.removesuffix(suffix)
    return settings.named_beside_store(name) or settings.named_after_store(path.name)


def _in_protected_dir(settings: Settings, path: Path) -> Path | None:
    """The kept-file directory (keys, checkpoints) `path` is in, if any."""
    for directory in (settings.keys_dir, settings.checkpoints_dir):
        if _same(path.parent, directory):
            return directory
    return None


def check_output(settings: Settings, path: Path, *, force: bool = False) -> None:
    """Refuses `path` (OutputPathError) unless a file may be written there now."""
    if _named_after_store(settings, path) or any(
        _same(path, protected) for protected in protected_paths(settings)
    ):
        raise OutputPathError(
            f"{path} is one of the store's own files or keys; it is never overwritten "
            "(name another file)"
        )
    kept = _in_protected_dir(settings, path)
    if kept == settings.keys_dir and path.exists():
        raise OutputPathError(f"{path} is in the key directory; name another file")
    if path.is_dir():
        raise OutputPathError(f"{path} is a directory; name a file in it")
    if path.exists() or path.is_symlink():
        if kept == settings.checkpoints_dir:
            raise OutputPathError(
                f"{path} is a kept checkpoint; it is never overwritten (name another file)"
            )
        if not force:
            raise OutputPathError(f"{path} exists; {FORCE_HINT}, or name another file")
    if not path.parent.exists() and not path.parent.is_symlink():
        # not made for it: a mistyped directory would hold the file where no one looks
        raise OutputPathError(
            f"{path}: no directory {path.parent} (none is made for an output); make it "
            "first, or name a file in a directory that exists"
        )
    check_directory(path.parent)


def check_directory(directory: Path) -> None:
    """A file can be made in `directory` (or in the directories to be made for it)."""
    existing = directory
    while not existing.exists():
        if existing.is_symlink() or existing.parent == existing:
            raise OutputPathError(f"cannot write in {directory}: it cannot be made")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"cannot write in {directory}: {existing} is not a directory")
    if existing != directory:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputPathError(f"cannot write in {directory}: {existing} is not writable")
        return
    try:  # the test that counts: a file made there (a read-only mount, a full disk)
        handle, probe = tempfile.mkstemp(prefix=".backcheck-probe-", dir=directory)
    except OSError as e:
        raise OutputPathError(f"cannot write in {directory}: {e.strerror or e}") from None
    os.close(handle)
    os.unlink(probe)


def write_output(settings: Settings, path: Path, data: bytes, *, force: bool = False) -> Path:
    """Writes `data` to `path` whole, once `check_output` allows it (its directory is not made:
    it must be there); a kept checkpoint with the same content is left as it is. Without
    `force` an existing file is never replaced, even one made since the check (the file is
    linked into place, which fails if the name is taken)."""
    kept = path.is_file() and not path.is_symlink() and _in_protected_dir(settings, path)
    if kept and path.read_bytes() == data:
        return path
    check_output(settings, path, force=force)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise OutputPathError(f"cannot write in {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(temporary, path)
        else:
            _link_new(Path(temporary), path)
    except OSError as e:
        raise OutputPathError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return path


def check_document(path: Path) -> None:
    """Refuses `path` (OutputPathError) unless a document may be written there: not a
    directory, and a directory it can be made in."""
    if path.is_dir():
        raise OutputPathError(f"{path} is a directory; name a file in it")
    check_directory(path.parent)


def write_document(path: Path, data: bytes) -> Path:
    """Writes `data` to `path`, replacing a file there, for a document that holds nothing
    secret and records nothing (the AsyncAPI contract, its fingerprints): with the umask's
    mode, as any file the user writes, the directories it needs made. OutputPathError naming
    the path when it cannot be written."""
    check_document(path)
    _make_parent(path)
    try:
        path.write_bytes(data)
    except OSError as e:
        raise OutputPathError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _make_parent(path: Path) -> None:
    make_directory(path.parent)


def make_directory(directory: Path) -> None:
    """`directory` and those above it, made if missing: for the app's own (DATA_DIR's
    checkpoints) and documents, never an output's."""
    # a place no directory can be made in that the check could not see (/proc, as root)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"cannot write in {directory}: {e.strerror or e}") from None


def _link_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise OutputPathError(f"{path} exists; {FORCE_HINT}, or name another file") from None
    except OSError:  # a file system without hard links: the check above has to do
        if path.exists():
            raise OutputPathError(f"{path} exists; {FORCE_HINT}, or name another file") from None
        os.replace(temporary, path)


def free_name(directory: Path, stem: str, suffix: str) -> Path:
    """`directory/STEM.SUFFIX`, or `STEM-2.SUFFIX`, `-3`… when that name is taken."""
    path = directory / f"{stem}{suffix}"
    n = 2
    while path.exists() or path.is_symlink():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path
