"""The identity provider's public keys (a JWKS, RFC 7517), fetched with bounds and kept.

The key set comes from an https URL (plain http only on the loopback interface, where no one
else can answer in the provider's place) or from a file. A fetch takes at most 5 seconds and
reads at most 256 KiB; redirects are refused, since a key set that moved is a configuration to
change, not a hop to follow. The keys are kept and fetched again when a token names a key the
set does not hold (the provider rotated its keys) or the set is an hour old — never more than
once a minute, so tokens naming made-up keys cannot make backcheck hammer the provider. When a
fetch fails the keys in hand stay in use: a key the provider withdrew is trusted until a fetch
succeeds, at most one attempt a minute.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.config import ConfigError
from services.errors import AuthenticationError

FETCH_TIMEOUT = 5.0  # seconds for one whole fetch
MAX_JWKS_BYTES = 256 * 1024  # a provider's key set is a few KiB
MAX_KEYS = 100
MIN_REFETCH_INTERVAL = 60.0  # seconds between two fetches, whatever tokens arrive
MAX_AGE = 3600.0  # seconds a fetched key set is kept before it is fetched again
MAX_KID = 256
ASYMMETRIC = frozenset({"RSA", "EC", "OKP"})  # a shared secret ("oct") never verifies a token
VARIABLE = "BACKCHECK_OIDC_JWKS"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("the key set URL redirects elsewhere; configure the new URL")


def _read_bounded(stream: Any, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise AuthenticationError(
                f"the identity provider's key set took over {FETCH_TIMEOUT:g} s to arrive"
            )
        chunk = stream.read(16384)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_JWKS_BYTES:
            raise AuthenticationError(
                f"the identity provider's key set is over {MAX_JWKS_BYTES} bytes; refused"
            )
        chunks.append(chunk)


@dataclass(frozen=True)
class JwksUrl:
    url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if not parts.hostname:
            raise ConfigError(f"{VARIABLE}: {self.url!r} names no host")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ConfigError(
                f"{VARIABLE}: {self.url!r} is plain http to another host; anyone on the way "
                "could hand out keys: use https (http only for 127.0.0.1, ::1 or localhost)"
            )
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"{VARIABLE}: {self.url!r} is not an https URL or a file path")

    def describe(self) -> str:
        return self.url

    def read(self) -> bytes:
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if urlsplit(self.url).scheme == "http":  # loopback: never through a proxy
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(
            self.url, headers={"Accept": "application/jwk-set+json, application/json"}
        )
        deadline = time.monotonic() + FETCH_TIMEOUT
        try:
            with opener.open(request, timeout=FETCH_TIMEOUT) as response:
                return _read_bounded(response, deadline)
        except urllib.error.HTTPError as e:
            raise AuthenticationError(
                f"the identity provider's key set could not be fetched from {self.url}: "
                f"HTTP {e.code}"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise AuthenticationError(
                f"the identity provider's key set could not be fetched from {self.url}: {reason}"
            ) from None


@dataclass(frozen=True)
class JwksFile:
    path: Path

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> bytes:
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_JWKS_BYTES + 1)
        except OSError as e:
            raise AuthenticationError(
                f"the identity provider's key set could not be read from {self.path}: "
                f"{e.strerror or e}"
            ) from None
        if len(data) > MAX_JWKS_BYTES:
            raise AuthenticationError(
                f"the key set file {self.path} is over {MAX_JWKS_BYTES} bytes; refused"
            )
        return data


JwksSource = JwksUrl | JwksFile


def jwks_source(where: str | Path) -> JwksSource:
    """An https URL (http only to the loopback interface) or the path of a JWKS file."""
    if isinstance(where, Path):
        return JwksFile(where)
    text = where.strip()
    if not text:
        raise ConfigError(f"{VARIABLE}: empty; give an https URL or a file path")
    if "://" in text:
        if text.lower().startswith("file://"):
            return JwksFile(Path(urlsplit(text).path))
        return JwksUrl(text)
    return JwksFile(Path(text).expanduser())


def parse_key_set(data: bytes) -> dict[str | None, list[dict[str, Any]]]:
    """The verification keys of a JWKS document, by key id: asymmetric keys meant for
    signatures; a key for encryption or a shared secret is left out."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationError("the identity provider's key set is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise AuthenticationError("the identity provider's key set has no 'keys' list")
    if len(keys) > MAX_KEYS:
        raise AuthenticationError(f"the identity provider's key set has over {MAX_KEYS} keys")
    found: dict[str | None, list[dict[str, Any]]] = {}
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ASYMMETRIC:
            continue
        if key.get("use", "sig") != "sig":
            continue
        kid = key.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID):
            continue
        found.setdefault(kid, []).append(key)
    return found


@dataclass(eq=False)
class KeySet:
    """The provider's keys, fetched on first use and again when stale or missing a key."""

    source: JwksSource
    monotonic: Callable[[], float] = time.monotonic
    min_interval: float = MIN_REFETCH_INTERVAL
    max_age: float = MAX_AGE
    fetches: int = 0  # how many times the source was read (tests and diagnostics)
    _keys: dict[str | None, list[dict[str, Any]]] | None = field(default=None, repr=False)
    _fetched_at: float | None = field(default=None, repr=False)
    _failure: str = field(default="", repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _may_fetch(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.min_interval

    def _fetch(self, now: float) -> None:
        self._fetched_at = now  # a failed fetch also waits its turn
        self.fetches += 1
        keys = parse_key_set(self.source.read())
        self._keys = keys

    def keys(self, kid: str | None) -> list[dict[str, Any]]:
        """The keys with this id (the one key set's keys when the token names none), fetching
        the set again, once a minute at most, when it is stale or lacks this id."""
        with self._lock:
            now = self.monotonic()
            stale = self._fetched_at is not None and now - self._fetched_at >= self.max_age
            missing = self._keys is None or (kid is not None and kid not in self._keys)
            if (missing or stale) and self._may_fetch(now):
                try:
                    self._fetch(now)
                except AuthenticationError as e:
                    self._failure = str(e)
                    if self._keys is None:
                        raise
            if self._keys is None:
                raise AuthenticationError(
                    f"{self._failure}; the next attempt is at most a minute away"
                )
            if kid is None:
                return [k for keys in self._keys.values() for k in keys]
            return list(self._keys.get(kid, ()))
