"""Rules the Principal aggregate enforces: a bounded name given once (its id derived from it),
a portal link that is the candidate's own and expires, no candidate role outside a portal
link, at most 50 assignments, and revocation that is final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import InvalidPrincipalError, PrincipalRevokedError
from domain.principal import (
    MAX_ASSIGNMENTS,
    Principal,
    portal_name,
    principal_id,
    session_ending,
)
from tests.story import NOW, RECRUITER, refuses

HASH = "a" * 64
OTHER_HASH = "b" * 64


def staff(name: str = "hr:li.na", **overrides: object) -> Principal:
    values: dict[str, object] = {
        "name": name,
        "role": "recruiter",
        "kind": "staff",
        "assignments": (),
        "token_hash": HASH,
        "expires_at": None,
        "added_by": "operator",
    }
    values.update(overrides)
    return Principal.add(**values)  # type: ignore[arg-type]


def test_a_principal_is_stored_under_the_id_its_name_gives() -> None:
    principal = staff()

    assert principal.id == principal_id("hr:li.na")
    assert (principal.name, principal.role, principal.kind) == ("hr:li.na", "recruiter", "staff")
    assert principal.token_hash == HASH
    assert principal.revoked is None
    assert [type(e).__qualname__ for e in principal.collect_events()] == ["Principal.Added"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "1 to 120 characters"),
        ("x" * 121, "1 to 120 characters"),
        ("HR:Li", "lower-case letters"),
        ("-hr", "starting with a letter or digit"),
        ("hr li", "lower-case letters"),
        ("hr/li", "lower-case letters"),
    ],
)
def test_a_name_outside_the_rule_is_refused_naming_the_field(name: str, rule: str) -> None:
    with refuses(None, InvalidPrincipalError, "'name'", rule):
        staff(name)


def test_a_name_of_120_characters_is_accepted() -> None:
    assert staff("a" * 120).name == "a" * 120


def test_an_unknown_kind_is_refused() -> None:
    with refuses(None, InvalidPrincipalError, "'kind'"):
        staff(kind="robot")


def test_more_than_fifty_assignments_are_refused_and_repeats_count_once() -> None:
    many = tuple(uuid4() for _ in range(MAX_ASSIGNMENTS + 1))
    with refuses(None, InvalidPrincipalError, "'assignments'", "at most 50"):
        staff(assignments=many)

    one = uuid4()
    assert staff(assignments=(one, one, *many[:49])).assignments == (one, *many[:49])


def test_only_a_portal_link_holds_the_candidate_role() -> None:
    with refuses(None, InvalidPrincipalError, "'role'", "portal link"):
        staff(role="candidate")


def test_only_a_portal_link_is_named_candidate_colon() -> None:
    """`candidate:<id>` is the name a candidate's portal link is issued under: a staff or
    service principal so named would be rotated by the next link issued, handing the candidate
    a token in its role (review, fourteenth session: `principals add candidate:ID --role
    compliance`, then the candidate's link signed in as compliance, unconfined)."""
    for kind in ("staff", "service"):
        for name in (portal_name(uuid4()), "candidate:x"):
            with refuses(None, InvalidPrincipalError, "'name'", "portal link"):
                staff(name, kind=kind)
    assert staff("candidates:hr").name == "candidates:hr"


def test_a_portal_link_is_the_candidates_own_and_expires() -> None:
    subject, other = uuid4(), uuid4()
    portal = {
        "name": portal_name(subject),
        "role": "candidate",
        "kind": "portal",
        "assignments": (subject,),
        "expires_at": NOW + timedelta(days=30),
    }
    assert staff(**portal).assignments == (subject,)

    for wrong in (
        {"assignments": (other,)},
        {"assignments": (subject, other)},
        {"role": "recruiter"},
        {"name": portal_name(other)},
    ):
        with refuses(None, InvalidPrincipalError, "'kind'", "candidate:<id>"):
            staff(**{**portal, **wrong})
    with refuses(None, InvalidPrincipalError, "'expires_at'", "always expires"):
        staff(**{**portal, "expires_at": None})


def test_an_expiry_without_its_offset_and_a_hash_that_is_no_sha256_are_refused() -> None:
    with refuses(None, InvalidPrincipalError, "'expires_at'"):
        staff(expires_at=datetime(2026, 4, 1))  # naive, on purpose
    with refuses(None, InvalidPrincipalError, "'token_hash'"):
        staff(token_hash="bck_" + "0" * 60)


def test_rotating_replaces_the_hash_and_the_expiry() -> None:
    principal = staff()
    later = datetime(2026, 6, 1, tzinfo=UTC)

    principal.rotate(OTHER_HASH, later, RECRUITER)

    assert (principal.token_hash, principal.expires_at) == (OTHER_HASH, later)
    assert principal.expired_at(later)
    assert not principal.expired_at(later - timedelta(seconds=1))


def test_a_revoked_principal_is_neither_rotated_nor_revoked_again() -> None:
    principal = staff()
    principal.revoke("left the company", RECRUITER)
    assert principal.revoked == "left the company"

    with refuses(principal, PrincipalRevokedError, "hr:li.na", "new token"):
        principal.rotate(OTHER_HASH, None, RECRUITER)
    with refuses(principal, PrincipalRevokedError, "revoked again"):
        principal.revoke("again", RECRUITER)
    assert principal.token_hash == HASH


def test_a_revocation_states_why() -> None:
    principal = staff()
    with refuses(principal, InvalidPrincipalError, "'reason'"):
        principal.revoke("  ", RECRUITER)


def test_a_principal_replays_from_its_events() -> None:
    principal = staff(assignments=(uuid4(),))
    principal.rotate(OTHER_HASH, NOW, RECRUITER)
    principal.revoke("rotated out", RECRUITER)
    events = principal.collect_events()

    replayed = None
    for e in events:
        replayed = e.mutate(replayed)

    assert isinstance(replayed, Principal)
    assert vars(replayed) == vars(principal)


def test_only_a_portal_link_not_revoked_opens_a_portal_session() -> None:
    subject = uuid4()
    portal = staff(
        name=portal_name(subject),
        role="candidate",
        kind="portal",
        assignments=(subject,),
        expires_at=NOW + timedelta(days=30),
    )
    portal.collect_events()

    portal.open_session(NOW + timedelta(hours=8), portal_name(subject))

    (opened,) = portal.collect_events()
    assert isinstance(opened, Principal.SessionOpened)
    assert (opened.ends_at, opened.opened_by) == (NOW + timedelta(hours=8), portal_name(subject))
    member = staff()
    with refuses(member, InvalidPrincipalError, "'kind'", "portal link"):
        member.open_session(NOW, "hr:li.na")
    portal.revoke("phone lost", RECRUITER)
    with refuses(portal, PrincipalRevokedError, "portal session"):
        portal.open_session(NOW, portal_name(subject))


def test_only_a_portal_links_session_is_signed_out_of_and_a_revocation_does_not_hide_it() -> None:
    subject = uuid4()
    portal = staff(
        name=portal_name(subject),
        role="candidate",
        kind="portal",
        assignments=(subject,),
        expires_at=NOW + timedelta(days=30),
    )
    portal.open_session(NOW + timedelta(hours=8), portal_name(subject))
    portal.collect_events()

    out = NOW + timedelta(minutes=10)
    portal.close_session(NOW, portal_name(subject), out)

    (closed,) = portal.collect_events()
    assert isinstance(closed, Principal.SessionClosed)
    assert (closed.opened_at, closed.ended_at, closed.reason, closed.closed_by) == (
        NOW,
        out,
        "signed-out",
        portal_name(subject),
    )
    member = staff()
    with refuses(member, InvalidPrincipalError, "'kind'", "portal link"):
        member.close_session(NOW, "hr:li.na", out)
    with refuses(portal, InvalidPrincipalError, "'opened_at'", "UTC offset"):
        portal.close_session(NOW.replace(tzinfo=None), portal_name(subject), out)
    portal.revoke("phone lost", RECRUITER)
    portal.collect_events()
    portal.close_session(NOW, portal_name(subject), out)  # signed out as it was: recorded
    assert [type(e).__qualname__ for e in portal.collect_events()] == ["Principal.SessionClosed"]


IDLE = timedelta(minutes=30)


def test_a_session_not_signed_out_of_ended_by_whichever_of_its_rules_came_first() -> None:
    opened = NOW
    last = NOW + timedelta(hours=2)  # its last call
    longest = NOW + timedelta(hours=8)
    assert session_ending(opened, last, longest, IDLE, None) == ("idle", last + IDLE)
    late = NOW + timedelta(hours=7, minutes=45)
    assert session_ending(opened, late, longest, IDLE, None) == ("expired", longest)
    assert session_ending(opened, last, last + IDLE, IDLE, None) == ("expired", last + IDLE)
    replaced = NOW + timedelta(hours=2, minutes=10)
    assert session_ending(opened, last, longest, IDLE, None, replaced) == ("replaced", replaced)
    after = NOW + timedelta(hours=3)  # a sign-in in its browser after it had ended unused
    assert session_ending(opened, last, longest, IDLE, None, after) == ("idle", last + IDLE)


def test_a_session_whose_link_stopped_first_ended_with_it_and_has_no_end_of_its_own() -> None:
    opened, last, longest = NOW, NOW + timedelta(hours=2), NOW + timedelta(hours=8)
    link_first = last + timedelta(minutes=10)
    assert session_ending(opened, last, longest, IDLE, link_first) is None
    link_after = last + IDLE + timedelta(minutes=1)
    assert session_ending(opened, last, longest, IDLE, link_after) == ("idle", last + IDLE)


def test_only_a_portal_links_session_is_found_ended_by_its_rules_and_by_no_one() -> None:
    subject = uuid4()
    portal = staff(
        name=portal_name(subject),
        role="candidate",
        kind="portal",
        assignments=(subject,),
        expires_at=NOW + timedelta(days=30),
    )
    portal.collect_events()
    ended = NOW + timedelta(minutes=30)

    portal.end_session(NOW, ended, "idle")

    (closed,) = portal.collect_events()
    assert isinstance(closed, Principal.SessionClosed)
    assert (closed.opened_at, closed.ended_at, closed.reason) == (NOW, ended, "idle")
    assert (closed.closed_by, closed.authenticated) == (None, None)
    with refuses(portal, InvalidPrincipalError, "'reason'", "idle, expired, replaced"):
        portal.end_session(NOW, ended, "signed-out")  # a sign-out has its caller
    with refuses(portal, InvalidPrincipalError, "'ended_at'", "after it opened"):
        portal.end_session(NOW, NOW - timedelta(seconds=1), "expired")
    with refuses(portal, InvalidPrincipalError, "'ended_at'", "UTC offset"):
        portal.end_session(NOW, ended.replace(tzinfo=None), "idle")
    member = staff()
    with refuses(member, InvalidPrincipalError, "'kind'", "portal link"):
        member.end_session(NOW, ended, "idle")
