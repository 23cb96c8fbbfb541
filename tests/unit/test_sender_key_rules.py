"""A service's sender key: held by a service that is not revoked, a real Ed25519 public key,
a bounded scope; issued, rotated and revoked as events of its principal."""

from __future__ import annotations

import pytest

from domain.errors import InvalidPrincipalError, PrincipalRevokedError
from domain.principal import MAX_ACTS_FOR, Principal, sender_key_id

KEY, OTHER = "A" * 43 + "=", "B" * 43 + "="


def service(kind: str = "service") -> Principal:
    return Principal.add("svc:ats", "service", kind, (), "c" * 64, None, "operator")


def test_issuing_then_rotating_then_revoking_is_three_events_naming_the_keys() -> None:
    ats = service()

    ats.issue_sender_key(KEY, ("register-candidate",), ("self",), "operator")
    ats.issue_sender_key(OTHER, ("register-candidate",), ("hr:li.na",), "operator")
    ats.revoke_sender_key("left on a laptop", "operator")

    issued, rotated, revoked = ats.collect_events()[1:]
    assert type(issued).__name__ == "SenderKeyIssued"
    assert type(rotated).__name__ == "SenderKeyRotated"
    assert rotated.replaced == sender_key_id(KEY)  # type: ignore[attr-defined]
    assert rotated.key_id == sender_key_id(OTHER)  # type: ignore[attr-defined]
    assert type(revoked).__name__ == "SenderKeyRevoked"
    assert ats.sender_key is None
    assert ats.sender_use_cases == ()


def test_only_a_service_holds_a_sender_key() -> None:
    with pytest.raises(InvalidPrincipalError, match="only a service principal sends commands"):
        service("staff").issue_sender_key(KEY, ("register-candidate",), ("self",), "operator")


def test_a_revoked_service_is_given_no_sender_key() -> None:
    ats = service()
    ats.revoke("gone", "operator")

    with pytest.raises(PrincipalRevokedError):
        ats.issue_sender_key(KEY, ("register-candidate",), ("self",), "operator")


@pytest.mark.parametrize(
    ("key", "uses", "acts", "field"),
    [
        ("A" * 44, ("register-candidate",), ("self",), "public_key"),
        ("QUJD", ("register-candidate",), ("self",), "public_key"),
        (KEY, (), ("self",), "use_cases"),
        (KEY, ("register-candidate",), (), "acts_for"),
        (KEY, ("register-candidate",), ("Not A Name",), "acts_for"),
        (KEY, ("register-candidate",), tuple(f"p{n}" for n in range(MAX_ACTS_FOR + 1)), "acts_for"),
    ],
)
def test_a_sender_key_outside_what_the_domain_accepts_is_refused_naming_the_field(
    key: str, uses: tuple[str, ...], acts: tuple[str, ...], field: str
) -> None:
    ats = service()

    with pytest.raises(InvalidPrincipalError) as refused:
        ats.issue_sender_key(key, uses, acts, "operator")

    assert refused.value.details["field"] == field
    assert ats.pending_events[-1].__class__.__name__ == "Added"


def test_a_service_without_a_key_has_none_to_revoke() -> None:
    with pytest.raises(InvalidPrincipalError, match="holds no sender key"):
        service().revoke_sender_key("why", "operator")
