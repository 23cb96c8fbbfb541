"""The BACKCHECK_OIDC_* settings: all or nothing around the issuer, every role mapped to a
staff role, and a key set location no one else can answer for; each mistake a ConfigError
naming the variable (exit 78)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, Settings
from infra.http.oidc import oidc_verifier
from infra.problem import problem_for
from services.access import Role

ISSUER = "https://login.example.com/realms/acme"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("ISSUER", "AUDIENCE", "JWKS", "ROLE_MAP", "ROLE_CLAIM", "PRINCIPAL_CLAIM"):
        monkeypatch.delenv(f"BACKCHECK_OIDC_{name}", raising=False)
    monkeypatch.delenv("BACKCHECK_OIDC_ASSIGNMENTS_CLAIM", raising=False)
    monkeypatch.setenv("BACKCHECK_DATA_DIR", str(tmp_path))
    return monkeypatch


def configure(env: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        env.setenv(f"BACKCHECK_OIDC_{name.upper()}", value)


def config_error(env: pytest.MonkeyPatch, **values: str) -> str:
    configure(env, **values)
    with pytest.raises(ConfigError) as e:
        Settings.load()
    problem = problem_for(e.value)
    assert problem is not None
    assert problem.exit_code == 78
    return str(e.value)


def full(jwks: str) -> dict[str, str]:
    return {
        "issuer": ISSUER,
        "audience": "backcheck",
        "jwks": jwks,
        "role_map": "hr-staff=recruiter, auditors=compliance,cn=inv=investigator",
    }


def test_no_issuer_means_no_oidc(env: pytest.MonkeyPatch) -> None:
    settings = Settings.load()
    assert settings.oidc_issuer is None
    assert oidc_verifier(settings) is None


def test_a_full_configuration_makes_a_verifier(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    configure(env, **full(str(jwks)), role_claim="groups", principal_claim="email")
    settings = Settings.load()
    assert settings.oidc_role_map == {
        "hr-staff": Role.RECRUITER,
        "auditors": Role.COMPLIANCE,
        "cn=inv": Role.INVESTIGATOR,  # the role is after the last "="
    }
    verifier = oidc_verifier(settings)
    assert verifier is not None
    assert (verifier.role_claim, verifier.principal_claim) == ("groups", "email")
    assert verifier.describe() == f"issuer {ISSUER}, audience backcheck, keys from {jwks}"


def test_an_issuer_without_audience_keys_or_role_map_is_a_config_error(
    env: pytest.MonkeyPatch,
) -> None:
    reason = config_error(env, issuer=ISSUER)
    for variable in ("BACKCHECK_OIDC_AUDIENCE", "BACKCHECK_OIDC_JWKS", "BACKCHECK_OIDC_ROLE_MAP"):
        assert variable in reason
    assert "required with BACKCHECK_OIDC_ISSUER" in reason


def test_oidc_settings_without_an_issuer_are_a_config_error(env: pytest.MonkeyPatch) -> None:
    reason = config_error(env, audience="backcheck", role_map="a=recruiter")
    assert "BACKCHECK_OIDC_AUDIENCE, BACKCHECK_OIDC_ROLE_MAP: set, but BACKCHECK_OIDC_ISSUER" in (
        reason
    )


@pytest.mark.parametrize(
    ("role_map", "rule"),
    [
        ("hr-staff=boss", "'boss' (for 'hr-staff') is not a backcheck staff role"),
        ("students=candidate", "'candidate' (for 'students') is not a backcheck staff role"),
        ("robots=service", "'service' (for 'robots') is not a backcheck staff role"),
        ("hr-staff", "'hr-staff' is not GROUP=ROLE"),
        ("=recruiter", "'=recruiter' is not GROUP=ROLE"),
        ("hr=recruiter,hr=compliance", "'hr' is mapped to two roles"),
        (" , ", "empty"),
        (",".join(f"g{i}=recruiter" for i in range(101)), "over 100 entries"),
    ],
)
def test_a_role_map_that_does_not_name_staff_roles_is_a_config_error(
    env: pytest.MonkeyPatch, role_map: str, rule: str
) -> None:
    reason = config_error(env, **{**full("/x"), "role_map": role_map})
    assert reason.startswith("BACKCHECK_OIDC_ROLE_MAP: ")
    assert rule in reason


def test_a_role_map_lists_the_staff_roles_it_takes(env: pytest.MonkeyPatch) -> None:
    reason = config_error(env, **{**full("/x"), "role_map": "hr=boss"})
    assert "compliance, hiring_manager, investigator, recruiter, reviewer" in reason


def test_a_setting_with_control_characters_is_a_config_error(env: pytest.MonkeyPatch) -> None:
    reason = config_error(env, **{**full("/x"), "audience": "back\x1bcheck"})
    assert reason.startswith("BACKCHECK_OIDC_AUDIENCE: ")


@pytest.mark.parametrize(
    ("jwks", "rule"),
    [
        ("http://login.example.com/certs", "plain http to another host"),
        ("gopher://login.example.com/certs", "not an https URL"),
        ("/nowhere/jwks.json", "/nowhere/jwks.json is not a file"),
    ],
)
def test_a_key_set_location_is_checked_when_the_verifier_is_made(
    env: pytest.MonkeyPatch, jwks: str, rule: str
) -> None:
    configure(env, **full(jwks))
    settings = Settings.load()
    with pytest.raises(ConfigError) as e:
        oidc_verifier(settings)
    assert str(e.value).startswith("BACKCHECK_OIDC_JWKS: ")
    assert rule in str(e.value)
