"""`backcheck keys rotate-master`: every data key rewrapped under a new master key
(infra/privacy/rotation.py), recorded at its start and its end, resumable."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import orjson
import typer
from rich.text import Text

from domain.errors import PickledAsItIs
from infra.cli.common import app, console, err, fail, load_settings

if TYPE_CHECKING:
    from infra.config import Settings
    from infra.privacy.providers import KeyProvider
    from infra.privacy.rotation import AbandonReport, RotationReport
    from services.application import Backcheck

keys_app = typer.Typer(help="The master key: rotate it.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate-master")
def rotate_master(
    to_key_file: Annotated[
        Path | None,
        typer.Option(
            "--to-key-file",
            help="the new master key file; a missing one is refused unless --new-key",
        ),
    ] = None,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key",
            help="make the new key if there is none: at --to-key-file (mode 600), or under "
            "--to-pkcs11-label on the token (non-extractable)",
        ),
    ] = False,
    to_pkcs11_label: Annotated[
        str | None,
        typer.Option(
            "--to-pkcs11-label",
            help="the new key's label on the configured PKCS#11 token; a label not there is "
            "refused unless --new-key",
        ),
    ] = None,
    abandon: Annotated[
        bool,
        typer.Option(
            "--abandon",
            help="give up the rotation left unfinished (its new key lost): the store stays on "
            "its key, and may be rotated to another",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as one JSON object")] = False,
) -> None:
    """Rewrap every data key under a new master key and bind the store to it; the store's
    writers go on meanwhile. Run it again after a crash or an interruption: it finishes what is
    left. Afterwards point BACKCHECK_MASTER_KEY_FILE (or BACKCHECK_PKCS11_KEY_LABEL) at the new
    key, restart the processes still holding the old one, and the old key may be destroyed.

    A --to-key-file that does not exist, or a --to-pkcs11-label not on the token, is refused
    unless --new-key asks for a new key there: a mistyped path or label must not become the
    store's key. --abandon (alone) gives up a rotation cut off before it switched, whose new
    key is lost: recorded, and every data key stays wrapped by the store's key."""
    from infra.inputs import InputError

    if abandon:
        if to_key_file is not None or to_pkcs11_label is not None or new_key:
            fail(InputError("--abandon takes no new key: give it alone (with --json)"), as_json)
        _abandon(as_json)
        return
    new: KeyProvider | None = None
    application: Backcheck | None = None
    made = _Made()
    try:
        if (to_key_file is None) == (to_pkcs11_label is None):
            raise InputError("give one of --to-key-file and --to-pkcs11-label (or --abandon)")
        settings = load_settings()  # first: no new key made for a store that cannot open
        if new_key and _missing(settings, to_key_file, to_pkcs11_label):
            # everything that can refuse the rotation is asked before the key is made, so a
            # refused rotation leaves no key, file or folder behind
            if to_key_file is not None:
                made.plan(to_key_file)
            application = _before_a_new_key(settings)
            new = _new_provider(settings, to_key_file, to_pkcs11_label, make=True)
        else:
            new = _new_provider(settings, to_key_file, to_pkcs11_label, make=False)
            application = _open(settings, new)
        with _stopped_by_signals():
            report = _rotate(application, new, show_progress=not as_json)
    except (Exception, _Stopped) as e:
        started = _started(application, new)
        switched = _switched(application, new)
        if made.files and not started:
            made.undo()  # refused before anything was wrapped by the key made for it
        if application is None and new is not None:
            new.close()
        if application is not None:
            application.close()
        if isinstance(e, _Stopped):
            _say_stopped(e, new, started=started, switched=switched)
        fail(e, as_json)
    application.close()
    if as_json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
        return
    what = "finished an unfinished rotation" if report.resumed else "rotated"
    console.print(
        f"{what}: master key {report.from_key} -> {report.to_key}, {report.rewrapped} data "
        "keys rewrapped"
        + (
            f", {report.unreadable} unreadable by either (left as they were)"
            if report.unreadable
            else ""
        )
    )
    console.print(
        "the store is bound to the new key: point the settings at it and restart the processes "
        "still holding the old one; then the old key may be destroyed"
    )


class _Stopped(PickledAsItIs, BaseException):
    """SIGINT or SIGTERM during a rotation: not an `Exception`, so that nothing on the way
    takes it for an error of its own; the transaction under way rolls back."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM raise `_Stopped` in the rotation, which stops it between
    two statements; the handlers before are restored after."""

    def stop(signum: int, _: FrameType | None) -> None:
        raise _Stopped(signum)

    before = {n: signal.signal(n, stop) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _switched(application: Backcheck | None, new: KeyProvider | None) -> bool:
    """Whether this process bound the store to `new` (the rotation's switch committed)."""
    if application is None or new is None:
        return False
    return bool(getattr(application.keys, "provider", None) is new)


def _say_stopped(
    stopped: _Stopped, new: KeyProvider | None, *, started: bool, switched: bool
) -> NoReturn:
    """One line, and exit 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    name = signal.Signals(stopped.signum).name
    if switched and new is not None:
        line = (
            f"rotation stopped by {name} after the store was bound to master key {new.key_id}: "
            "run the same command again to record its finish"
        )
    elif started and new is not None:
        line = (
            f"rotation stopped by {name}: the rotation to master key {new.key_id} is not "
            "finished, the store is on its key as before; run the same command again to resume "
            "it, or, if that key is lost, give it up with `backcheck keys rotate-master "
            "--abandon`"
        )
    else:
        line = f"rotation stopped by {name} before it started: nothing was rotated"
    err.print(Text(line, style="red"))
    raise typer.Exit(128 + stopped.signum)


def _abandon(as_json: bool) -> None:
    """`--abandon`: the unfinished rotation given up (infra/privacy/rotation.py)."""
    from infra.bootstrap import build_app
    from infra.privacy.keystore import SQLKeyStore
    from infra.privacy.rotation import abandon_rotation

    application: Backcheck | None = None
    try:
        application = build_app(load_settings())
        assert isinstance(application.keys, SQLKeyStore)
        report: AbandonReport = abandon_rotation(application, application.keys)
    except Exception as e:
        if application is not None:
            application.close()
        fail(e, as_json)
    application.close()
    if as_json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
        return
    console.print(
        f"abandoned: the rotation to master key {report.abandoned_key}, {report.cleared} data "
        f"keys' wrapping by it cleared; every data key is wrapped by the store's key "
        f"{report.key} alone, and the store may be rotated to another"
    )


class _Made:
    """The key file and folders a `--new-key` run makes, to be removed if it is refused."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.folders: list[Path] = []

    def plan(self, path: Path) -> None:
        """Checks that `path` can be made (its nearest folder that exists is a folder this
        user may write), and notes what making it will make."""
        from infra.config import ConfigError

        path = path.absolute()
        missing = [p for p in path.parents if not p.exists()]
        there = path.parents[len(missing)] if len(missing) < len(path.parents) else Path("/")
        if not there.is_dir():
            raise ConfigError(
                f"--to-key-file: {there} is not a folder: no key can be made under it"
            )
        if not os.access(there, os.W_OK | os.X_OK):
            raise ConfigError(
                f"--to-key-file: {there} cannot be written by this user: no key can be made there"
            )
        self.files, self.folders = [path], missing  # the deepest folder first

    def undo(self) -> None:
        for file in self.files:
            file.unlink(missing_ok=True)
        for folder in self.folders:
            try:
                folder.rmdir()
            except OSError:
                return  # something else is in it now: left


def _missing(settings: Settings, path: Path | None, label: str | None) -> bool:
    """Whether the new key is not there yet (`--new-key` would make it)."""
    if path is not None:
        return not os.path.lexists(path)
    from infra.privacy.pkcs11 import KeyLabelMissingError, Pkcs11KeyProvider

    assert label is not None
    try:
        Pkcs11KeyProvider.at(settings, label, create=False).close()
    except KeyLabelMissingError:
        return True
    return False


def _before_a_new_key(settings: Settings) -> Backcheck:
    """The application on the store's key, once nothing refuses a rotation to a key not made
    yet: no rotation to another key is left unfinished."""
    from infra.bootstrap import build_app
    from infra.privacy.keystore import SQLKeyStore
    from infra.privacy.rotation import refuse_unfinished

    application = build_app(settings)
    try:
        assert isinstance(application.keys, SQLKeyStore)
        refuse_unfinished(application.keys, None)
    except BaseException:
        application.close()
        raise
    return application


def _started(application: Backcheck | None, new: KeyProvider | None) -> bool:
    """Whether a rotation to `new` is recorded (so data keys may be wrapped by it): its key is
    then kept whatever happened. Not known (the store gone meanwhile): taken as started."""
    if new is None:
        return False
    if application is None:
        return False
    from domain.master_key import rotation_id

    try:
        return bool(application.exists(rotation_id(new.key_id)))
    except Exception:
        return True


def _new_provider(
    settings: Settings, path: Path | None, label: str | None, *, make: bool
) -> KeyProvider:
    if path is not None:
        from infra.config import ConfigError
        from infra.privacy.providers import FileKeyProvider, key_file_exists, master_key_file

        if not make and not key_file_exists(path, "--to-key-file"):
            raise ConfigError(
                f"--to-key-file: no master key at {path}; to make a new key there, add --new-key"
            )
        master_key_file(path, "--to-key-file")
        return FileKeyProvider.from_file(path, create=make, setting="--to-key-file")
    from infra.config import ConfigError
    from infra.privacy.pkcs11 import KeyLabelMissingError, Pkcs11KeyProvider

    assert label is not None
    try:
        return Pkcs11KeyProvider.at(settings, label, create=make)
    except KeyLabelMissingError:
        raise ConfigError(
            f"--to-pkcs11-label: no AES key labelled {label!r} on the configured token; to "
            "make one there, add --new-key"
        ) from None


def _open(settings: Settings, new: KeyProvider) -> Backcheck:
    """The application on the configured key; on the new one if the store is bound to it
    already (a rotation cut off after its switch, whose old key may be gone)."""
    from infra.bootstrap import build_app
    from infra.config import ConfigError
    from infra.privacy.keystore import WrongMasterKeyError

    try:
        return build_app(settings)
    except (WrongMasterKeyError, ConfigError) as first:
        try:
            return build_app(settings, provider=new)
        except WrongMasterKeyError:
            raise first from None


def _rotate(application: Backcheck, new: KeyProvider, *, show_progress: bool) -> RotationReport:
    from infra.privacy.keystore import SQLKeyStore
    from infra.privacy.rotation import rotate_master as rotate

    keys = application.keys
    assert isinstance(keys, SQLKeyStore)
    if not (show_progress and err.is_terminal):
        return rotate(application, keys, new)
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("rewrapping data keys", total=None)

        def progress(done: int, pending: int) -> None:
            bar.update(task, completed=done, total=pending)

        return rotate(application, keys, new, progress)
