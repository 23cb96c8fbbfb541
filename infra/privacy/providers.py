"""Who holds the master key: a key provider wraps and unwraps data keys, and says which key it is.

The key store (infra/privacy/keystore.py) never sees a master key, only a provider:

- `wrap(data_key) -> blob` and `unwrap(blob) -> data_key` (AES key wrap, RFC 3394; a blob
  the key did not wrap raises `InvalidUnwrap`);
- `check_scheme` and `check_value()`: what the store records to know the key again (an HMAC or
  a CMAC of a fixed label under the key, never the key), and `key_id`, a short public name
  derived from it, kept beside each wrapped data key so the store knows which master wrapped
  it (a rotation resumes from there);
- `setting` and `describe()`: the setting and the place a fault is reported against.

Two providers: the key file (`FileKeyProvider`, the embedded default: 64 hex digits, mode 600)
and a PKCS#11 token (`infra/privacy/pkcs11.py`: a hardware security module or a cloud HSM,
where the master key is a non-extractable AES key and wrap and unwrap are calls to the token).
Every fault of a provider is a `ConfigError` (exit 78) naming the setting and the place.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from infra.config import ConfigError, file_setting
from infra.files import write_whole

if TYPE_CHECKING:
    from infra.config import Settings

# The check value's scheme, stored beside it: a later scheme is a new row, never a changed one.
KEY_CHECK_SCHEME = "hmac-sha256:backcheck master key check v1"
KEY_CHECK_TABLE = "backcheck_key_check"  # where a store records its master key's check value
KEY_ID_BYTES = 8  # of the check value: a name for the key, no help in finding it


class KeyProvider(Protocol):
    kind: str
    setting: str
    check_scheme: str

    @property
    def key_id(self) -> str: ...

    def check_value(self) -> bytes: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, blob: bytes) -> bytes: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def key_id_of(kind: str, check_value: bytes) -> str:
    return f"{kind}:{check_value[:KEY_ID_BYTES].hex()}"


def key_check_value(master_key: bytes) -> bytes:
    """What the store keeps to know its master key again: an HMAC of a fixed label, equal for
    the same key, different for another, and no help in finding the key."""
    return hmac.new(master_key, KEY_CHECK_SCHEME.encode(), hashlib.sha256).digest()


def load_master_key(
    path: Path, *, create: bool, setting: str = "BACKCHECK_MASTER_KEY_FILE"
) -> bytes:
    """32 raw bytes from a file of 64 hex digits; created (mode 600) on first use if allowed.
    A file that others than its owner may read or write is refused, as ssh refuses such a
    private key: whoever can read it can read every personal value in the store. `setting`:
    what named the file (a refusal names it), when not the store's own key setting (`keys
    rotate-master --to-key-file`)."""
    try:
        # not blocking: a pipe (or a device) at the key's path is refused, never waited on
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(mode):
                raise ConfigError(
                    f"{setting}: {path} is not a regular file (a pipe or a device); a master "
                    "key is a file of 64 hex digits"
                )
            refuse_shared(path, mode, setting)
            text = os.read(fd, 4096).decode("ascii", "replace").strip()  # a key is 65 bytes
        finally:
            os.close(fd)
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"{setting}: no master key at {path}; without it no personal "
                "value in this store can be read"
            ) from None
        try:
            key = _make_master_key(path)
        except FileExistsError:
            return load_master_key(path, create=False, setting=setting)
        except OSError as e:  # its folder cannot be made or written (permission, disk full)
            raise ConfigError(
                f"{setting}: no master key at {path}, and none can be made in "
                f"{path.parent}: {e.strerror or e}"
            ) from None
        return key
    except OSError as e:  # a directory, no permission to read it
        raise _unreadable(setting, path, e) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{setting}: {path}: a master key is 64 hex digits (32 bytes)")
    return key


def _make_master_key(path: Path) -> bytes:
    """A new master key at `path` (mode 600), its folder made; FileExistsError if another
    process made one first (its key is then the one). Any other OSError: none was made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    # written aside, then linked into place (infra/files.py): the link fails if another
    # process or thread (a relay and workers starting together, two requests on a new store)
    # created the key first, and then its key is the one.
    write_whole(path, (key.hex() + "\n").encode(), replace=False)
    return key


def master_key_file(path: Path, setting: str = "BACKCHECK_MASTER_KEY_FILE") -> Path:
    """`path` as a master key file to be read or made (`file_setting`: not a directory, its
    directory made if missing). A directory on the way that this user may not look in (the
    data directory's `keys/` unreadable) is the key that cannot be read, as a key file that
    cannot be read is: a configuration error naming `setting`, never a file fault."""
    try:
        return file_setting(setting, path, "master key")
    except OSError as e:
        raise _unreadable(setting, path, e) from None


def key_file_exists(path: Path, setting: str = "BACKCHECK_MASTER_KEY_FILE") -> bool:
    """Whether a master key file is at `path`; a directory on the way that cannot be looked
    in is `master_key_file`'s configuration error (`Path.exists` raises it)."""
    try:
        return path.exists()
    except OSError as e:
        raise _unreadable(setting, path, e) from None


def _unreadable(setting: str, path: Path, error: OSError) -> ConfigError:
    """A master key that cannot be read, however: worded as `load_master_key` words it."""
    return ConfigError(f"{setting}: {path} cannot be read: {error.strerror or error}")


def refuse_shared(path: Path, mode: int, setting: str = "BACKCHECK_MASTER_KEY_FILE") -> None:
    shared = stat.S_IMODE(mode) & 0o077
    if shared:
        who = " and ".join(
            w for w, bits in (("its group", 0o070), ("everyone", 0o007)) if shared & bits
        )
        raise ConfigError(
            f"{setting}: {path} may be read or written by {who} "
            f"(mode {stat.S_IMODE(mode):04o}); a master key must be its owner's alone: "
            f"chmod 600 {path}"
        )


class FileKeyProvider:
    """The master key as 32 bytes from a file (`load_master_key`), wrapping in the process."""

    kind = "file"
    setting = "BACKCHECK_MASTER_KEY_FILE"
    check_scheme = KEY_CHECK_SCHEME

    def __init__(self, key: bytes, path: Path | None = None) -> None:
        if len(key) != 32:
            raise ConfigError(f"{self.setting}: a master key is 32 bytes")
        self._key = key
        self.path = path
        self._check = key_check_value(key)

    @classmethod
    def from_file(
        cls, path: Path, *, create: bool, setting: str = "BACKCHECK_MASTER_KEY_FILE"
    ) -> FileKeyProvider:
        return cls(load_master_key(path, create=create, setting=setting), path)

    @property
    def key_id(self) -> str:
        return key_id_of(self.kind, self._check)

    def check_value(self) -> bytes:
        return self._check

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, blob: bytes) -> bytes:
        return aes_key_unwrap(self._key, blob)

    def describe(self) -> str:
        return f"the key in {self.path}" if self.path else "this key"

    def close(self) -> None:
        pass


def provider_from_settings(settings: Settings, *, create: bool) -> tuple[KeyProvider, bool]:
    """The configured provider, and whether its key was made just now (for a new store)."""
    if settings.key_provider == "pkcs11":
        from infra.privacy.pkcs11 import Pkcs11KeyProvider

        provider = Pkcs11KeyProvider.from_settings(settings, create=create)
        return provider, provider.created
    path = settings.master_key_path
    existed = key_file_exists(path)
    return FileKeyProvider.from_file(path, create=create), not existed


def same_key(a: KeyProvider, b: KeyProvider) -> bool:
    return a.check_scheme == b.check_scheme and hmac.compare_digest(
        a.check_value(), b.check_value()
    )
