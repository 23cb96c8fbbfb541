"""Staff signed in through OIDC, end to end through the HTTP application on a SQLite store:
`/v1/me` names the token's principal, role and way of signing in; a bad token is a 401
problem with the Bearer challenge; a read is recorded under `oidc:<sub>` as authenticated by
OIDC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from infra.bootstrap import build_app
from infra.config import Settings
from infra.http.app import create_app
from infra.http.auth import Authenticator
from infra.http.idempotency import SQLiteIdempotency, kept_answers
from infra.http.oidc import OidcVerifier
from infra.http.sessions import portal_sessions
from services.access import Role
from tests.conftest import FakeClock
from tests.http import STAFF, Served, problem
from tests.integration.test_http_api import access_log
from tests.oidc import AUDIENCE, ISSUER, key_set, rsa_key, sign
from tests.story import PURPOSE

CHALLENGE = 'Bearer realm="backcheck", error="invalid_token"'


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock, key: rsa.RSAPrivateKey) -> Iterator[Served]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(key_set((key, "k1")))
    verifier = OidcVerifier(
        ISSUER,
        AUDIENCE,
        jwks,
        role_map={"hr-staff": Role.RECRUITER, "auditors": Role.COMPLIANCE},
    )
    app = build_app(settings, clock=clock)
    kept = kept_answers("sqlite", settings.sqlite_path, "", "")
    assert isinstance(kept, SQLiteIdempotency)
    sessions = portal_sessions(settings)
    http = create_app(app, Authenticator(app, sessions, oidc=verifier), kept, settings=settings)
    try:
        with TestClient(http, raise_server_exceptions=True) as client:
            api = Served(app, client, kept, sessions)
            for name, role in STAFF.items():
                api.issue(name, role)
            yield api
    finally:
        kept.close()
        sessions.close()
        app.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_oidc_bearer_signs_in_as_the_tokens_principal_and_role(
    api: Served, key: rsa.RSAPrivateKey
) -> None:
    r = api.client.get("/v1/me", headers=bearer(sign(key)))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "principal": "oidc:alice",
        "role": "recruiter",
        "authentication": "oidc",
        "assignments": [],
    }
    r = api.client.get("/v1/me", headers=bearer(sign(key, sub="wu.min", roles=["auditors"])))
    assert (r.json()["principal"], r.json()["role"]) == ("oidc:wu.min", "compliance")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 600}, "the token has expired"),
        ({"aud": "another-app"}, "not meant for audience backcheck"),
        ({"roles": ["sales"]}, "no backcheck role in claim 'roles'"),
    ],
)
def test_a_bad_oidc_bearer_is_a_401_problem_with_the_bearer_challenge(
    api: Served, key: rsa.RSAPrivateKey, changes: dict[str, object], reason: str
) -> None:
    token = sign(key, **changes)
    r = api.client.get("/v1/me", headers=bearer(token))
    body = problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == CHALLENGE
    assert reason in body["detail"]
    assert token not in r.text
    assert token.split(".")[2] not in r.text


def test_a_token_signed_by_a_stranger_is_a_401(api: Served) -> None:
    r = api.client.get("/v1/me", headers=bearer(sign(rsa_key())))
    body = problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == CHALLENGE
    assert "signature does not verify" in body["detail"]


def test_a_read_by_an_oidc_principal_is_recorded_as_authenticated_by_oidc(
    api: Served, key: rsa.RSAPrivateKey
) -> None:
    alice = bearer(sign(key))
    registered = api.client.post("/v1/candidates", json={"name": "Li Lei"}, headers=alice)
    assert registered.status_code == 201, registered.text
    candidate = registered.json()["candidate_id"]
    # no consent yet: the read is refused, and the refusal recorded under the token's principal
    r = api.client.get(
        f"/v1/candidates/{candidate}/profile", params={"purpose": PURPOSE}, headers=alice
    )
    problem(r, 403, "AccessRefused")
    reads = [e for e in access_log(api, candidate) if e["view"] == "profile"]
    assert [(e["principal"], e["role"], e["authentication"], e["outcome"]) for e in reads] == [
        ("oidc:alice", "recruiter", "oidc", "refused")
    ]
