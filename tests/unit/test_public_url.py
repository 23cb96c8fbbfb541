"""BACKCHECK_PUBLIC_URL, the address portal links open: http(s), a host, maybe a port, and
nothing after them; anything else refused in one line naming the variable."""

from __future__ import annotations

import pytest

from infra.config import PUBLIC_URL, ConfigError, Settings, parse_public_url
from infra.http.link import portal_link


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://backcheck.example.com", "https://backcheck.example.com"),
        ("https://backcheck.example.com/", "https://backcheck.example.com"),
        ("  http://10.0.0.5:8080 ", "http://10.0.0.5:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_a_public_url_is_scheme_host_and_port(given: str, kept: str) -> None:
    assert parse_public_url(given) == kept


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("backcheck.example.com", "is not http(s)://HOST[:PORT]"),
        ("ftp://backcheck.example.com", "is not http(s)://HOST[:PORT]"),
        ("https://", "is not http(s)://HOST[:PORT]"),
        ("https://example.com:eighty", "port that is not a number"),
        ("https://example.com/backcheck", "the portal is served at /portal"),
        ("https://example.com?x=1", "the portal is served at /portal"),
        ("https://example.com#top", "the portal is served at /portal"),
        ("https://me@example.com", "the portal is served at /portal"),
        ("https://exa mple.com", "spaces or control characters"),
        ("https://" + "a" * 2050, "over 2048 characters"),
    ],
)
def test_anything_else_is_refused_naming_the_variable(given: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_public_url(given)
    assert str(refused.value).startswith("BACKCHECK_PUBLIC_URL: ")
    assert says in str(refused.value)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKCHECK_PUBLIC_URL", raising=False)
    assert Settings.load().public_url == PUBLIC_URL == "http://127.0.0.1:8000"
    monkeypatch.setenv("BACKCHECK_PUBLIC_URL", "https://hr.example.com/")
    assert Settings.load().public_url == "https://hr.example.com"


def test_the_link_puts_the_token_in_the_fragment_of_the_portals_address() -> None:
    assert (
        portal_link("https://hr.example.com", "bck_x")
        == "https://hr.example.com/portal#token=bck_x"
    )
