"""Staff signing in with their organisation's identity provider: an OIDC/JWT bearer token.

A token is accepted only when it is signed by one of the provider's public keys (its JWKS,
infra/http/jwks.py) with an algorithm on the allowed list — never `none`, never a shared-secret
HS* algorithm, so a token "signed" with the public key as an HMAC secret is refused — and
when it was issued by the configured issuer, names the configured audience, and is within its
`exp`/`nbf`/`iat` (30 seconds of clock skew allowed). The principal is `oidc:<sub>`; the role is
the one backcheck role the token's role claim maps to (BACKCHECK_OIDC_ROLE_MAP): none mapped, or
two different ones, and the token is refused. Only staff roles can be mapped: candidates sign in
with their portal link, services with an API token. No refusal repeats any part of the token.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt

from infra.config import OIDC_STAFF_ROLES, ConfigError, Settings
from infra.http.jwks import JwksFile, JwksSource, KeySet, jwks_source
from services.access import Role
from services.errors import AuthenticationError
from services.identity import Authentication, Identity

MAX_TOKEN = 8192
MAX_SUBJECT = 200
MAX_ROLE_VALUES = 256
MAX_ASSIGNMENTS = 1000
LEEWAY_SECONDS = 30
# Which keys each allowed algorithm verifies with: (kty, curves; None = any).
KEY_FOR: dict[str, tuple[str, frozenset[str] | None]] = {
    **{a: ("RSA", None) for a in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
# Algorithm names a refusal may repeat (registered JWA names; anything else is not echoed).
_NAMED = frozenset(KEY_FOR) | {"none", "HS256", "HS384", "HS512", "ES256K"}
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _refuse(reason: str) -> AuthenticationError:
    return AuthenticationError(f"OIDC token refused: {reason}")


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by its name, or by a dotted path into nested objects (`realm_access.roles`)
    when no claim has the whole name (names such as `https://example.com/roles` stay whole)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _header(token: str) -> dict[str, Any]:
    encoded = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict):
        raise _refuse("the token's header is not a JSON object")
    return header


def _suits(key: Mapping[str, Any], alg: str) -> bool:
    kty, curves = KEY_FOR[alg]
    if key.get("kty") != kty or key.get("alg", alg) != alg:
        return False
    return curves is None or key.get("crv") in curves


class OidcVerifier:
    """Bearer token -> the Identity it proves, or AuthenticationError saying why not."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JwksSource | str | Path,
        *,
        role_map: Mapping[str, Role],
        role_claim: str = "roles",
        principal_claim: str = "sub",
        assignments_claim: str | None = None,
        leeway_seconds: int = LEEWAY_SECONDS,
        algorithms: Iterable[str] = ("RS256", "ES256", "EdDSA"),
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.algorithms = tuple(algorithms)
        unknown = [a for a in self.algorithms if a not in KEY_FOR]
        if unknown or not self.algorithms:
            raise ConfigError(
                f"OIDC algorithms {unknown or '(none)'} not accepted; choose among "
                f"{', '.join(KEY_FOR)} (public-key signatures only)"
            )
        if not issuer or not audience:
            raise ConfigError("OIDC needs both an issuer and an audience")
        not_staff = sorted({r.value for r in role_map.values()} - OIDC_STAFF_ROLES)
        if not role_map or not_staff:
            raise ConfigError(
                "BACKCHECK_OIDC_ROLE_MAP: map the provider's roles or groups to staff roles "
                f"({', '.join(sorted(OIDC_STAFF_ROLES))})"
                + (f"; not {', '.join(not_staff)}" if not_staff else "")
            )
        self.issuer = issuer
        self.audience = audience
        self.source = jwks if isinstance(jwks, JwksSource) else jwks_source(jwks)
        self.keys = KeySet(self.source, monotonic) if monotonic is not None else KeySet(self.source)
        self.role_map = dict(role_map)
        self.role_claim = role_claim
        self.principal_claim = principal_claim
        self.assignments_claim = assignments_claim
        self.leeway = leeway_seconds

    def describe(self) -> str:
        return f"issuer {self.issuer}, audience {self.audience}, keys from {self.source.describe()}"

    def __call__(self, token: str) -> Identity:
        claims = self._verified_claims(token)
        return Identity(
            principal=self._principal(claims),
            role=self._role(claims),
            authentication=Authentication.OIDC,
            assignments=self._assignments(claims),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN:
            raise _refuse(f"the token is over {MAX_TOKEN} bytes")
        if not _COMPACT_JWS.fullmatch(token):
            raise _refuse("not a signed JWT (three base64url parts joined by dots)")
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            named = f" {alg}" if isinstance(alg, str) and alg in _NAMED else ""
            raise _refuse(
                f"the token's algorithm{named} is not accepted; only the identity provider's "
                f"public-key signatures are ({', '.join(self.algorithms)})"
            )
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise _refuse("the token's key id (kid) is not a short string")
        key = self._key(kid, alg)
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refuse("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _refuse("the token is not valid yet (its nbf or iat is in the future)") from None
        except jwt.InvalidIssuerError:
            raise _refuse(f"the token was not issued by {self.issuer}") from None
        except jwt.InvalidAudienceError:
            raise _refuse(f"the token is not meant for audience {self.audience}") from None
        except jwt.MissingRequiredClaimError as e:
            raise _refuse(f"the token has no {e.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise _refuse("the signature does not verify with the provider's key") from None
        except jwt.DecodeError:
            raise _refuse("the token is not a well-formed JWT") from None
        except jwt.PyJWTError as e:
            raise _refuse(f"the token is invalid ({type(e).__name__})") from None

    def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        known = self.keys.keys(kid)
        suited = [k for k in known if _suits(k, alg)]
        if kid is not None and not known:
            raise _refuse(
                "its signing key (kid) is not in the identity provider's key set, "
                "even fetched again"
            )
        if not suited:
            raise _refuse(f"the identity provider has no {alg} key for the token")
        if len(suited) > 1:
            raise _refuse(
                f"the token names no key (kid) and the identity provider has {len(suited)} "
                f"{alg} keys"
            )
        try:
            return jwt.PyJWK(suited[0], algorithm=alg)
        except jwt.PyJWTError:
            raise _refuse("the identity provider's key for the token cannot be used") from None

    def _principal(self, claims: Mapping[str, Any]) -> str:
        name = self.principal_claim
        subject = _claim(claims, name)
        if not isinstance(subject, str) or not subject.strip():
            raise _refuse(f"the token has no {name!r} claim naming the principal")
        if len(subject) > MAX_SUBJECT:
            raise _refuse(f"the {name!r} claim is over {MAX_SUBJECT} characters")
        if any(unicodedata.category(c) in _UNPRINTABLE for c in subject):
            raise _refuse(f"the {name!r} claim holds control or invisible characters")
        return f"oidc:{subject}"

    def _role(self, claims: Mapping[str, Any]) -> Role:
        name = self.role_claim
        value = _claim(claims, name)
        if value is None:
            raise _refuse(f"no backcheck role in claim {name!r}: the token has no such claim")
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or len(values) > MAX_ROLE_VALUES
            or not all(isinstance(v, str) for v in values)
        ):
            raise _refuse(
                f"claim {name!r} is not a string or a list of at most {MAX_ROLE_VALUES} strings"
            )
        roles = {self.role_map[v] for v in values if v in self.role_map}
        if not roles:
            raise _refuse(
                f"no backcheck role in claim {name!r}: none of its values is mapped "
                "(BACKCHECK_OIDC_ROLE_MAP)"
            )
        if len(roles) > 1:
            raise _refuse(
                f"claim {name!r} maps to several backcheck roles "
                f"({', '.join(sorted(roles))}); a principal acts in one role"
            )
        return roles.pop()

    def _assignments(self, claims: Mapping[str, Any]) -> frozenset[UUID]:
        """The subjects a scoped token is limited to; a token without the claim is unscoped,
        and a claim naming no subject is refused (an empty scope never means every subject)."""
        name = self.assignments_claim
        if name is None:
            return frozenset()
        value = _claim(claims, name)
        if value is None:
            return frozenset()
        if (
            not isinstance(value, list)
            or not 0 < len(value) <= MAX_ASSIGNMENTS
            or not all(isinstance(v, str) and len(v) <= 64 for v in value)
        ):
            raise _refuse(f"claim {name!r} is not a list of 1 to {MAX_ASSIGNMENTS} candidate ids")
        try:
            return frozenset(UUID(v) for v in value)
        except ValueError:
            raise _refuse(f"claim {name!r} holds something that is not a candidate id") from None


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier the settings configure, or None when no OIDC issuer is set."""
    if settings.oidc_issuer is None:
        return None
    if not settings.oidc_audience or not settings.oidc_jwks or not settings.oidc_role_map:
        raise ConfigError(
            "BACKCHECK_OIDC_AUDIENCE, BACKCHECK_OIDC_JWKS and BACKCHECK_OIDC_ROLE_MAP are "
            "required with BACKCHECK_OIDC_ISSUER"
        )
    source = jwks_source(settings.oidc_jwks)
    if isinstance(source, JwksFile) and not source.path.is_file():
        raise ConfigError(f"BACKCHECK_OIDC_JWKS: {source.path} is not a file (nor an https URL)")
    return OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        source,
        role_map=settings.oidc_role_map,
        role_claim=settings.oidc_role_claim,
        principal_claim=settings.oidc_principal_claim,
        assignments_claim=settings.oidc_assignments_claim,
    )
