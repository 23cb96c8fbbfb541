"""The master key inside a PKCS#11 token: a hardware security module, a cloud HSM, SoftHSM2.

The key is an AES-256 secret key on the token, found by its label, made there (when allowed)
non-extractable and sensitive: the token refuses to give out its value, and wrap and unwrap are
calls to it (CKM_AES_KEY_WRAP, RFC 3394, the same blobs the key file's provider makes). A data
key is handed to the token as a session object that lives for one call and is destroyed after
it; a data key unwrapped by the token comes back the same way. The store knows the key again by
an AES-CMAC of a fixed label computed by the token (`check_value`).

Settings: BACKCHECK_PKCS11_MODULE (the vendor's library, e.g. /usr/lib/softhsm/libsofthsm2.so),
BACKCHECK_PKCS11_TOKEN_LABEL, BACKCHECK_PKCS11_PIN (the user PIN; a secret) and
BACKCHECK_PKCS11_KEY_LABEL (default backcheck-master). A module that does not load, a token not
there, a PIN refused, a key not found or one that could leave the token: one line naming the
setting and the place, exit 78 (ConfigError).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap

from infra.config import ConfigError
from infra.privacy.providers import key_id_of

if TYPE_CHECKING:
    from infra.config import Settings

CHECK_SCHEME = "aes-cmac:backcheck master key check v1"
DEFAULT_KEY_LABEL = "backcheck-master"
MAX_LABEL = 32  # a PKCS#11 token label is 32 characters; key labels are kept to the same

T = TypeVar("T")


def _import() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigError(
            "BACKCHECK_KEY_PROVIDER: pkcs11 needs python-pkcs11: pip install 'backcheck[pkcs11]'"
        ) from None
    return pkcs11


class KeyLabelMissingError(ConfigError):
    """No AES key under the label on the token (and none to be made)."""


class Pkcs11KeyProvider:
    kind = "pkcs11"
    setting = "BACKCHECK_PKCS11_KEY_LABEL"  # the setting a key that is not the store's is in
    check_scheme = CHECK_SCHEME

    def __init__(
        self, module: Path, token_label: str, pin: str, key_label: str, *, create: bool
    ) -> None:
        self._p11 = p11 = _import()
        self.module, self.token_label, self.key_label = module, token_label, key_label
        self.created = False
        where = f"{module}"
        try:
            lib = p11.lib(str(module))
        except p11.PKCS11Error as e:
            raise ConfigError(
                f"BACKCHECK_PKCS11_MODULE: cannot load the PKCS#11 module {where}: {_reason(e)}"
            ) from None
        try:
            token = lib.get_token(token_label=token_label)
        except p11.exceptions.NoSuchToken:
            raise ConfigError(
                f"BACKCHECK_PKCS11_TOKEN_LABEL: no token labelled {token_label!r} in {where}"
            ) from None
        except p11.PKCS11Error as e:
            raise self._unreachable(e) from None
        try:
            self._shared: _Shared | None = _Shared.open(token, module, token_label, pin)
            self._session = self._shared.session
            self._lock = self._shared.lock
        except (p11.exceptions.PinIncorrect, p11.exceptions.PinLenRange):
            raise ConfigError(
                f"BACKCHECK_PKCS11_PIN: the token {token_label!r} ({where}) refused the PIN"
            ) from None
        except p11.exceptions.PinLocked:
            raise ConfigError(
                f"BACKCHECK_PKCS11_PIN: the token {token_label!r} ({where}) has locked its PIN"
            ) from None
        except p11.PKCS11Error as e:
            raise self._unreachable(e) from None
        try:
            self._key = self._find_or_make(create)
            self._check: bytes = bytes(
                self._call(
                    lambda: self._key.sign(CHECK_SCHEME.encode(), mechanism=p11.Mechanism.AES_CMAC)
                )
            )
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool) -> Pkcs11KeyProvider:
        return cls.at(settings, settings.pkcs11_key_label, create=create)

    @classmethod
    def at(cls, settings: Settings, key_label: str, *, create: bool) -> Pkcs11KeyProvider:
        """The key labelled `key_label` on the configured token (a rotation's new key)."""
        missing = [
            name
            for name, value in (
                ("BACKCHECK_PKCS11_MODULE", settings.pkcs11_module),
                ("BACKCHECK_PKCS11_TOKEN_LABEL", settings.pkcs11_token_label),
                ("BACKCHECK_PKCS11_PIN", settings.pkcs11_pin),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"{missing[0]}: required with BACKCHECK_KEY_PROVIDER=pkcs11")
        assert settings.pkcs11_module
        assert settings.pkcs11_token_label
        assert settings.pkcs11_pin
        check_label("BACKCHECK_PKCS11_KEY_LABEL", key_label)
        return cls(
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pkcs11_pin,
            key_label,
            create=create,
        )

    def _find_or_make(self, create: bool) -> Any:
        p11 = self._p11
        attr = p11.Attribute
        place = f"token {self.token_label!r} ({self.module})"
        try:
            key = self._session.get_key(
                label=self.key_label,
                object_class=p11.ObjectClass.SECRET_KEY,
                key_type=p11.KeyType.AES,
            )
        except p11.exceptions.NoSuchKey:
            if not create:
                raise KeyLabelMissingError(
                    f"BACKCHECK_PKCS11_KEY_LABEL: no AES key labelled {self.key_label!r} on "
                    f"{place}; without it no personal value in this store can be read"
                ) from None
            self.created = True
            return self._session.generate_key(
                p11.KeyType.AES,
                256,
                label=self.key_label,
                store=True,
                template={
                    attr.EXTRACTABLE: False,
                    attr.SENSITIVE: True,
                    attr.WRAP: True,
                    attr.UNWRAP: True,
                    attr.SIGN: True,  # the check value, an AES-CMAC
                    attr.ENCRYPT: False,
                    attr.DECRYPT: False,
                },
            )
        except p11.exceptions.MultipleObjectsReturned:
            raise ConfigError(
                f"BACKCHECK_PKCS11_KEY_LABEL: more than one AES key labelled {self.key_label!r} "
                f"on {place}; give the master key a label of its own"
            ) from None
        except p11.PKCS11Error as e:
            raise self._unreachable(e) from None
        if key[attr.EXTRACTABLE] or not key[attr.SENSITIVE]:
            raise ConfigError(
                f"BACKCHECK_PKCS11_KEY_LABEL: the key {self.key_label!r} on {place} may leave "
                "the token (extractable or not sensitive); a master key must never leave it"
            )
        return key

    def _unreachable(self, e: Exception) -> ConfigError:
        return ConfigError(
            f"BACKCHECK_PKCS11_MODULE: the token {self.token_label!r} ({self.module}) cannot be "
            f"reached: {_reason(e)}"
        )

    def _call(self, call: Callable[[], T]) -> T:
        with self._lock:
            try:
                return call()
            except self._p11.PKCS11Error as e:
                raise self._unreachable(e) from None

    @property
    def key_id(self) -> str:
        return key_id_of(self.kind, self._check)

    def check_value(self) -> bytes:
        return self._check

    def wrap(self, data_key: bytes) -> bytes:
        p11 = self._p11
        attr = p11.Attribute

        def wrap() -> bytes:
            carrier = self._session.create_object(
                {
                    attr.CLASS: p11.ObjectClass.SECRET_KEY,
                    attr.KEY_TYPE: p11.KeyType.AES,
                    attr.VALUE: data_key,
                    attr.TOKEN: False,  # a session object, gone with the session at the latest
                    attr.EXTRACTABLE: True,
                    attr.SENSITIVE: False,
                }
            )
            try:
                blob: bytes = self._key.wrap_key(carrier, mechanism=p11.Mechanism.AES_KEY_WRAP)
            finally:
                carrier.destroy()
            return blob

        return self._call(wrap)

    def unwrap(self, blob: bytes) -> bytes:
        p11 = self._p11
        attr = p11.Attribute
        with self._lock:
            try:
                carrier = self._key.unwrap_key(
                    p11.ObjectClass.SECRET_KEY,
                    p11.KeyType.AES,
                    blob,
                    mechanism=p11.Mechanism.AES_KEY_WRAP,
                    store=False,
                    template={attr.EXTRACTABLE: True, attr.SENSITIVE: False},
                )
            except (p11.exceptions.GeneralError, p11.exceptions.WrappedKeyInvalid) as e:
                raise InvalidUnwrap() from e  # not wrapped by this key (SoftHSM: GeneralError)
            except p11.exceptions.WrappedKeyLenRange as e:
                raise InvalidUnwrap() from e
            except p11.PKCS11Error as e:
                raise self._unreachable(e) from None
            try:
                value: bytes = carrier[attr.VALUE]
            finally:
                carrier.destroy()
        return value

    def describe(self) -> str:
        return f"the key {self.key_label!r} {self.place()}"

    def place(self) -> str:
        return f"on token {self.token_label!r} ({self.module})"

    def destroy_key(self) -> None:
        """Removes the key from the token: only a key made just now for a store that refused
        it (infra/bootstrap.py), or by a test."""
        self._call(self._key.destroy)

    def close(self) -> None:
        shared: _Shared | None = getattr(self, "_shared", None)
        self._shared = None
        if shared is not None:
            shared.release()


class _Shared:
    """One logged-in session per token in a process, shared by its providers (a rotation's old
    and new key on one token): PKCS#11 logs in per application, not per session, and closing a
    logged-in session logs every session of the token out."""

    _open: dict[tuple[str, str], _Shared] = {}
    _guard = threading.Lock()

    def __init__(self, key: tuple[str, str], session: Any) -> None:
        self.key = key
        self.session = session
        self.lock = threading.Lock()  # a session serves one call at a time
        self.users = 1

    @classmethod
    def open(cls, token: Any, module: Path, label: str, pin: str) -> _Shared:
        key = (str(module), label)
        with cls._guard:
            shared = cls._open.get(key)
            if shared is not None:
                shared.users += 1
                return shared
            shared = cls._open[key] = cls(key, token.open(rw=True, user_pin=pin))
            return shared

    def release(self) -> None:
        with self._guard:
            self.users -= 1
            if self.users:
                return
            del self._open[self.key]
        with contextlib.suppress(Exception):  # a token gone already: nothing is left open
            self.session.close()


def check_label(setting: str, label: str) -> None:
    if not label.strip() or len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
        raise ConfigError(f"{setting}: 1 to {MAX_LABEL} characters, no control characters")


def _reason(e: Exception) -> str:
    text = " ".join(str(e).split())[:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
