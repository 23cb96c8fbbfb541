"""OIDC bearer tokens: a token signed by the provider's key, for this audience, in its time,
with one mapped role signs staff in as `oidc:<sub>`; anything else is refused with a reason
that repeats no part of the token. Keys are made here; the key set is read from a file or
fetched from a real HTTP server on the loopback interface."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.config import ConfigError
from infra.http.jwks import MAX_JWKS_BYTES, JwksFile, JwksUrl, jwks_source
from infra.http.oidc import MAX_TOKEN, OidcVerifier
from services.access import Role
from services.errors import AuthenticationError
from services.identity import Authentication, Identity
from tests.oidc import (
    AUDIENCE,
    ISSUER,
    KeySetServer,
    claims,
    ec_key,
    key_set,
    rsa_key,
    serving,
    sign,
)

ROLE_MAP = {"hr-staff": Role.RECRUITER, "hr-admins": Role.RECRUITER, "auditors": Role.COMPLIANCE}


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def eckey() -> ec.EllipticCurvePrivateKey:
    return ec_key()


@pytest.fixture
def jwks_file(tmp_path: Path, key: rsa.RSAPrivateKey, eckey: ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(key_set((key, "k1"), (eckey, "e1")))
    return path


@pytest.fixture
def verifier(jwks_file: Path) -> OidcVerifier:
    return OidcVerifier(ISSUER, AUDIENCE, jwks_file, role_map=ROLE_MAP)


@pytest.fixture
def served(key: rsa.RSAPrivateKey) -> Iterator[KeySetServer]:
    with serving(key_set((key, "k1"))) as server:
        yield server


def refused(verifier: OidcVerifier, token: str) -> str:
    """The verifier refuses the token; returns the reason, checked to repeat none of it."""
    with pytest.raises(AuthenticationError) as e:
        verifier(token)
    reason = str(e.value)
    assert token not in reason
    for part in token.split("."):
        assert len(part) < 8 or part not in reason
    return reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_token_signs_in_oidc_alice_in_the_mapped_role(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    exp = int(time.time()) + 300
    identity = verifier(sign(key, exp=exp))
    assert identity == Identity(
        principal="oidc:alice",
        role=Role.RECRUITER,
        authentication=Authentication.OIDC,
        assignments=frozenset(),
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


def test_an_ec_signed_token_and_a_single_role_string_are_accepted(
    verifier: OidcVerifier, eckey: ec.EllipticCurvePrivateKey
) -> None:
    identity = verifier(sign(eckey, kid="e1", roles="auditors", sub="bob"))
    assert (identity.principal, identity.role) == ("oidc:bob", Role.COMPLIANCE)


def test_roles_that_map_to_the_same_backcheck_role_are_one_role(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    assert verifier(sign(key, roles=["hr-staff", "hr-admins"])).role is Role.RECRUITER


def test_a_nested_role_claim_is_reached_by_its_dotted_path(
    jwks_file: Path, key: rsa.RSAPrivateKey
) -> None:
    verifier = OidcVerifier(
        ISSUER, AUDIENCE, jwks_file, role_map=ROLE_MAP, role_claim="realm_access.roles"
    )
    token = sign(key, roles=None, realm_access={"roles": ["auditors"]})
    assert verifier(token).role is Role.COMPLIANCE


@dataclass(frozen=True)
class Since:
    """A claim's time as seconds from the moment the test runs."""

    seconds: int


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example.com"}, f"not issued by {ISSUER}"),
        ({"aud": "another-app"}, f"not meant for audience {AUDIENCE}"),
        ({"exp": Since(-120)}, "has expired"),
        ({"nbf": Since(120)}, "not valid yet"),
        ({"iat": Since(120)}, "not valid yet"),
        ({"exp": None}, "no 'exp' claim"),
        ({"aud": None}, "no 'aud' claim"),
        ({"roles": None}, "no backcheck role in claim 'roles': the token has no such claim"),
        ({"roles": ["sales", "offline_access"]}, "no backcheck role in claim 'roles'"),
        ({"roles": ["hr-staff", "auditors"]}, "several backcheck roles (compliance, recruiter)"),
        ({"roles": [1, 2]}, "not a string or a list"),
        ({"sub": None}, "no 'sub' claim"),
        ({"sub": "alice\x1b[2J"}, "control or invisible characters"),
        ({"sub": "alice\u202eecila"}, "control or invisible characters"),
        ({"sub": "a" * 201}, "over 200 characters"),
    ],
)
def test_a_token_breaking_a_rule_is_refused_saying_which(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey, changes: dict[str, Any], reason: str
) -> None:
    now = int(time.time())  # times relative to when the test runs, not when it was collected
    claims = {k: now + v.seconds if isinstance(v, Since) else v for k, v in changes.items()}
    assert reason in refused(verifier, sign(key, **claims))


def test_clock_skew_within_the_leeway_is_accepted(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    assert verifier(sign(key, exp=now - 10, nbf=now + 10)).principal == "oidc:alice"


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
    verifier: OidcVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    assert "signature does not verify" in refused(verifier, sign(other_key, kid="k1"))


def test_a_tampered_payload_is_refused(verifier: OidcVerifier, key: rsa.RSAPrivateKey) -> None:
    header, _, signature = sign(key).split(".")
    forged = b64(json.dumps(claims(roles=["auditors"])).encode())
    assert "signature does not verify" in refused(verifier, f"{header}.{forged}.{signature}")


def test_alg_none_is_refused(verifier: OidcVerifier) -> None:
    token = jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})
    assert token.endswith(".")  # no signature at all
    assert "algorithm none is not accepted" in refused(verifier, token)
    assert "algorithm none is not accepted" in refused(verifier, token + "c2ln")


def test_hs256_with_the_public_key_as_secret_is_refused(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    """The classic key confusion: the provider's public key (which anyone can fetch) used
    as an HMAC secret, in the hope the verifier passes it to HS256."""
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert "algorithm HS256 is not accepted" in refused(verifier, f"{header}.{payload}.{b64(mac)}")
    with pytest.raises(ConfigError, match="HS256"):
        OidcVerifier(ISSUER, AUDIENCE, "/x", role_map=ROLE_MAP, algorithms=["HS256"])


def test_an_rsa_key_never_verifies_an_ec_algorithm(
    verifier: OidcVerifier, eckey: ec.EllipticCurvePrivateKey
) -> None:
    assert "no ES256 key" in refused(verifier, sign(eckey, kid="k1"))


def test_an_oversized_token_is_refused_before_it_is_read(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    token = sign(key, padding="x" * MAX_TOKEN)
    assert f"over {MAX_TOKEN} bytes" in refused(verifier, token)


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        ("garbage", "not a signed JWT"),
        ("a.b", "not a signed JWT"),
        ("eyJhbGciOi.eyJzdWIiOi.sig!", "not a signed JWT"),
        ("ünïcode.ünïcode.ünïcode", "not a signed JWT"),
        ("aaaa.bbbb.cccc", "header is not a JSON object"),
        (b64(b'{"alg":"RS256","kid":"k1"}') + ".bm90IGpzb24.c2ln", "signature does not verify"),
    ],
)
def test_garbage_is_refused(verifier: OidcVerifier, garbage: str, reason: str) -> None:
    assert reason in refused(verifier, garbage)


def test_a_signed_payload_that_is_not_json_is_refused(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey
) -> None:
    token = jwt.api_jws.encode(b"not json", key, algorithm="RS256", headers={"kid": "k1"})
    assert "not a well-formed JWT" in refused(verifier, token)


def test_a_token_without_kid_uses_the_one_key_for_its_algorithm(
    verifier: OidcVerifier, key: rsa.RSAPrivateKey, tmp_path: Path, other_key: rsa.RSAPrivateKey
) -> None:
    assert verifier(sign(key, kid=None)).principal == "oidc:alice"
    two = tmp_path / "two.json"
    two.write_bytes(key_set((key, "k1"), (other_key, "k2")))
    ambiguous = OidcVerifier(ISSUER, AUDIENCE, two, role_map=ROLE_MAP)
    assert "names no key (kid)" in refused(ambiguous, sign(key, kid=None))


def test_assignments_come_from_the_configured_claim(
    jwks_file: Path, key: rsa.RSAPrivateKey
) -> None:
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_file, role_map=ROLE_MAP, assignments_claim="bc")
    ids = [uuid4(), uuid4()]
    assert verifier(sign(key, bc=[str(i) for i in ids])).assignments == frozenset(ids)
    assert verifier(sign(key)).assignments == frozenset()
    assert "not a list of 1 to" in refused(verifier, sign(key, bc=[]))
    assert "not a candidate id" in refused(verifier, sign(key, bc=["not-a-uuid"]))


def test_an_unknown_kid_fetches_the_key_set_once_more_then_refuses(
    served: KeySetServer, key: rsa.RSAPrivateKey
) -> None:
    clock = Monotonic()
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP, monotonic=clock)
    assert verifier(sign(key)).principal == "oidc:alice"
    assert served.hits == 1
    clock.now += 61
    assert "not in the identity provider's key set" in refused(verifier, sign(key, kid="k9"))
    assert served.hits == 2  # fetched once more for the unknown key
    for kid in ("k10", "k11", "k12"):  # made-up keys within the minute fetch nothing
        refused(verifier, sign(key, kid=kid))
    assert served.hits == 2
    assert verifier(sign(key)).principal == "oidc:alice"  # the known key needs no fetch
    assert served.hits == 2


def test_a_rotated_key_is_fetched_once_when_a_token_first_names_it(
    served: KeySetServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    clock = Monotonic()
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP, monotonic=clock)
    verifier(sign(key))
    served.body = key_set((key, "k1"), (other_key, "k2"))  # the provider rotates
    clock.now += 120
    for _ in range(3):
        assert verifier(sign(other_key, kid="k2", sub="carol")).principal == "oidc:carol"
    assert served.hits == 2
    assert verifier(sign(key)).principal == "oidc:alice"  # the old key still works
    assert served.hits == 2


def test_a_key_set_an_hour_old_is_fetched_again_and_a_withdrawn_key_refused(
    served: KeySetServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    clock = Monotonic()
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP, monotonic=clock)
    verifier(sign(key))
    served.body = key_set((other_key, "k2"))
    clock.now += 3601
    assert "not in the identity provider's key set" in refused(verifier, sign(key))
    assert served.hits == 2


def test_a_provider_that_is_down_keeps_the_keys_in_hand(
    served: KeySetServer, key: rsa.RSAPrivateKey
) -> None:
    clock = Monotonic()
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP, monotonic=clock)
    verifier(sign(key))
    served.status = 503
    clock.now += 3601
    assert verifier(sign(key)).principal == "oidc:alice"
    assert served.hits == 2


def test_a_key_set_that_cannot_be_fetched_refuses_with_the_reason(
    served: KeySetServer, key: rsa.RSAPrivateKey
) -> None:
    served.status = 500
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP)
    assert "could not be fetched" in refused(verifier, sign(key))
    again = refused(verifier, sign(key))
    assert "HTTP 500" in again
    assert "at most a minute away" in again
    assert served.hits == 1  # the second token waited for the minute to pass


def test_a_key_set_over_the_size_cap_is_refused(
    served: KeySetServer, key: rsa.RSAPrivateKey
) -> None:
    served.body = b'{"keys": [], "pad": "' + b"x" * MAX_JWKS_BYTES + b'"}'
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP)
    assert f"over {MAX_JWKS_BYTES} bytes" in refused(verifier, sign(key))


def test_a_key_set_url_that_redirects_is_not_followed(
    served: KeySetServer, key: rsa.RSAPrivateKey
) -> None:
    served.status = 302
    served.headers["Location"] = "http://127.0.0.1:9/elsewhere"
    verifier = OidcVerifier(ISSUER, AUDIENCE, served.url, role_map=ROLE_MAP)
    assert "redirects elsewhere" in refused(verifier, sign(key))
    assert served.hits == 1


def test_shared_secret_and_encryption_keys_in_the_key_set_are_ignored(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    jwks = json.loads(key_set((key, "k1")))
    jwks["keys"][0]["use"] = "enc"
    jwks["keys"].append({"kty": "oct", "kid": "k1", "k": b64(b"secret")})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = OidcVerifier(ISSUER, AUDIENCE, path, role_map=ROLE_MAP)
    assert "not in the identity provider's key set" in refused(verifier, sign(key))


@pytest.mark.parametrize(
    ("where", "kind"),
    [
        ("https://login.example.com/certs", JwksUrl),
        ("http://127.0.0.1:8080/certs", JwksUrl),
        ("http://[::1]:8080/certs", JwksUrl),
        ("http://localhost/certs", JwksUrl),
        ("/etc/backcheck/jwks.json", JwksFile),
        ("file:///etc/backcheck/jwks.json", JwksFile),
    ],
)
def test_the_key_set_comes_from_https_loopback_http_or_a_file(where: str, kind: type) -> None:
    assert isinstance(jwks_source(where), kind)


@pytest.mark.parametrize(
    ("where", "rule"),
    [
        ("http://login.example.com/certs", "plain http to another host"),
        ("http://10.0.0.5/certs", "plain http to another host"),
        ("ftp://login.example.com/certs", "not an https URL"),
        ("https:///certs", "names no host"),
        ("  ", "empty"),
    ],
)
def test_a_key_set_location_anyone_could_answer_is_a_config_error(where: str, rule: str) -> None:
    with pytest.raises(ConfigError, match="BACKCHECK_OIDC_JWKS") as e:
        jwks_source(where)
    assert rule in str(e.value)


@pytest.mark.parametrize(
    ("role_map", "algorithms", "rule"),
    [
        ({"x": Role.CANDIDATE}, ("RS256",), "not candidate"),
        ({"x": Role.SERVICE}, ("RS256",), "not service"),
        ({}, ("RS256",), "BACKCHECK_OIDC_ROLE_MAP"),
        (ROLE_MAP, ("none",), "none"),
        (ROLE_MAP, (), "(none)"),
    ],
)
def test_a_verifier_refuses_non_staff_roles_and_unsafe_algorithms(
    role_map: dict[str, Role], algorithms: tuple[str, ...], rule: str
) -> None:
    with pytest.raises(ConfigError) as e:
        OidcVerifier(ISSUER, AUDIENCE, "/x", role_map=role_map, algorithms=algorithms)
    assert rule in str(e.value)
