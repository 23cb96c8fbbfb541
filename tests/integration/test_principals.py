"""Principals and their tokens, on each backend: a token is shown once and establishes its
principal until it is rotated, revoked or expires; the store keeps its hash, never the token;
reads made on behalf of an authenticated identity say so, stay within its assignments, and
take the identity's principal and role over anything the request states."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from domain.access import Access, Authentication
from domain.errors import (
    AccessRefusedError,
    InvalidPrincipalError,
    PrincipalAlreadyExistsError,
    PrincipalRevokedError,
)
from domain.principal import Principal, portal_name, principal_id
from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import problem_for
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AddPrincipal,
    GiveFeedback,
    IssuePortalLink,
    ReadAccessLog,
    ReadProfile,
    RecordDisclosure,
    RevokePrincipal,
    RotatePrincipal,
)
from services.errors import (
    AggregateMissingError,
    AuthenticationError,
    OutsideAssignmentsError,
    SetByAuthenticationError,
    UnknownPrincipalError,
)
from services.identity import ASSIGNMENTS_POLICY, Identity, acting_as
from services.principals import token_hash
from tests import story as s
from tests.conftest import FakeClock

COMPLIANCE = "compliance:zhou"


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def add(app: Backcheck, name: str = s.RECRUITER, **fields: object) -> str:
    values: dict[str, object] = {"name": name, "role": "recruiter", "actor": "operator"}
    values.update(fields)
    return app.add_principal(AddPrincipal.model_validate(values)).token


def refused_as(app: Backcheck, token: str, reason: str) -> None:
    with pytest.raises(AuthenticationError) as refused:
        app.authenticate(token)
    assert str(refused.value) == reason  # says why, and nothing of the token
    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.status, problem.title, problem.exit_code) == (401, "Unauthenticated", 77)


def secret(token: str) -> str:
    """The 43 characters after `bck_<32 hex>_` (they may hold `_` themselves)."""
    assert len(token) == 80
    return token[37:]


def accesses(app: Backcheck, candidate_id: UUID) -> list[Access.Recorded]:
    return [
        e
        for _, e in app.replay()
        if isinstance(e, Access.Recorded) and e.candidate_id == candidate_id
    ]


# --- tokens --------------------------------------------------------------------------------


def test_a_token_establishes_its_principal_with_role_and_assignments(app: Backcheck) -> None:
    candidate = s.register(app)
    issued = app.add_principal(
        AddPrincipal(
            name="svc:ats",
            role=Role.SERVICE,
            kind="service",
            assignments=[candidate],
            actor="operator",
        )
    )

    assert issued.token.startswith(f"bck_{principal_id('svc:ats').hex}_")
    assert len(secret(issued.token)) == 43
    assert (issued.kind, issued.role, issued.assignments) == ("service", "service", [candidate])
    assert app.authenticate(issued.token) == Identity(
        principal="svc:ats",
        role=Role.SERVICE,
        authentication=Authentication.TOKEN,
        assignments=frozenset({candidate}),
    )


def test_a_name_is_given_once(app: Backcheck) -> None:
    add(app)
    with pytest.raises(PrincipalAlreadyExistsError, match=r"hr:li\.na"):
        add(app, role="compliance")


def test_an_assignment_to_a_candidate_never_registered_is_refused(app: Backcheck) -> None:
    with pytest.raises(AggregateMissingError, match="no candidate"):
        add(app, assignments=[str(uuid4())])
    assert app.list_principals() == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hello",
        "bck_" + "0" * 32 + "_" + "a" * 43,  # our shape, no such principal
        "bck_" + "0" * 32 + "_" + "a" * 42,
        "bck_" + "x" * 10_000,
    ],
)
def test_a_token_that_is_none_of_ours_is_unknown(app: Backcheck, token: str) -> None:
    add(app)
    refused_as(app, token, "unknown token")


def test_a_token_with_another_secret_is_unknown(app: Backcheck) -> None:
    token = add(app)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    refused_as(app, forged, "unknown token")


def test_a_rotated_token_replaces_the_old_one(app: Backcheck) -> None:
    old = add(app)

    new = app.rotate_principal(RotatePrincipal(name=s.RECRUITER, actor="operator")).token

    assert new != old
    refused_as(app, old, "unknown token")
    assert app.authenticate(new).principal == s.RECRUITER


def test_a_revoked_token_is_refused_for_good(app: Backcheck) -> None:
    token = add(app)

    revoked = app.revoke_principal(
        RevokePrincipal(name=s.RECRUITER, reason="left the company", actor="operator")
    )

    assert (revoked.revoked, revoked.revoked_reason) == (True, "left the company")
    refused_as(app, token, "token revoked")
    with pytest.raises(PrincipalRevokedError):
        app.rotate_principal(RotatePrincipal(name=s.RECRUITER, actor="operator"))
    with pytest.raises(PrincipalRevokedError):
        app.revoke_principal(RevokePrincipal(name=s.RECRUITER, reason="again", actor="operator"))
    with pytest.raises(UnknownPrincipalError, match="principals list"):
        app.revoke_principal(RevokePrincipal(name="nobody", reason="x", actor="operator"))


def test_a_token_expires_by_the_applications_clock(app: Backcheck, clock: FakeClock) -> None:
    token = add(app, valid_days=1)
    clock.advance(hours=23, minutes=59)
    assert app.authenticate(token).expires_at == s.NOW.replace(day=3)

    clock.advance(minutes=1)

    refused_as(app, token, "token expired")


def test_a_listing_never_shows_a_token_or_its_hash(app: Backcheck) -> None:
    tokens = [add(app), add(app, "svc:ats", role="service", kind="service")]
    app.revoke_principal(RevokePrincipal(name="svc:ats", reason="replaced", actor="operator"))

    listed = app.list_principals()

    assert [(p.name, p.revoked) for p in listed] == [("hr:li.na", False), ("svc:ats", True)]
    shown = "".join(p.model_dump_json() for p in listed)
    for token in tokens:
        assert token not in shown
        assert token_hash(token) not in shown
        assert secret(token) not in shown
    assert "token" not in listed[0].model_dump()


def stored_values(settings: Settings) -> Iterator[bytes]:
    """Every value of every row the store holds (events, chain, keys, views), as bytes."""
    if settings.backend == "sqlite":
        for path in Path(settings.sqlite_path).parent.glob("*.sqlite"):
            with sqlite3.connect(path) as db:
                tables = [
                    r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                for table in tables:
                    for row in db.execute(f'SELECT * FROM "{table}"'):
                        yield from (v if isinstance(v, bytes) else str(v).encode() for v in row)
        return
    schema = settings.postgres_schema
    with psycopg.connect(settings.postgres_conninfo()) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            for row in db.execute(f'SELECT * FROM "{schema}"."{table}"'):
                yield from (
                    bytes(v) if isinstance(v, memoryview | bytes) else str(v).encode() for v in row
                )


def test_the_store_keeps_the_tokens_hash_and_never_the_token(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    candidate = s.register(app)
    tokens = [
        add(app),
        app.rotate_principal(RotatePrincipal(name=s.RECRUITER, actor="operator")).token,
        app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor=s.RECRUITER)).token,
    ]
    app.close()

    everything = b"\n".join(stored_values(settings))

    for token in tokens:
        assert token_hash(token).encode() in everything
        assert token.encode() not in everything
        assert secret(token).encode() not in everything


# --- portal links --------------------------------------------------------------------------


def test_a_portal_link_is_the_candidates_own_expiring_token(
    app: Backcheck, clock: FakeClock
) -> None:
    candidate = s.register(app)

    link = app.issue_portal_link(
        IssuePortalLink(candidate_id=candidate, valid_days=7, actor=s.RECRUITER)
    )

    assert (link.name, link.kind, link.role) == (f"candidate:{candidate}", "portal", "candidate")
    identity = app.authenticate(link.token)
    assert identity == Identity(
        principal=f"candidate:{candidate}",
        role=Role.CANDIDATE,
        authentication=Authentication.PORTAL,
        assignments=frozenset({candidate}),
        expires_at=s.NOW.replace(day=9),
    )

    # asked again (a week later), the link is replaced and runs from then
    clock.advance(days=6)
    again = app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor=s.RECRUITER))
    refused_as(app, link.token, "unknown token")
    assert again.expires_at == clock.now + timedelta(days=30)
    clock.advance(days=29, hours=23)
    assert app.authenticate(again.token).principal == f"candidate:{candidate}"
    clock.advance(hours=1)
    refused_as(app, again.token, "token expired")


def test_a_portal_link_is_for_a_registered_candidate_and_once_revoked_stays_so(
    app: Backcheck,
) -> None:
    with pytest.raises(AggregateMissingError, match="no candidate"):
        app.issue_portal_link(IssuePortalLink(candidate_id=uuid4(), actor=s.RECRUITER))
    candidate = s.register(app)
    link = app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor=s.RECRUITER))
    app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="link forwarded", actor="operator")
    )

    refused_as(app, link.token, "token revoked")
    with pytest.raises(PrincipalRevokedError):
        app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor=s.RECRUITER))


def test_the_candidate_reads_their_own_data_through_their_portal_link(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    other = s.consented_candidate(app, "Han Meimei")
    link = app.issue_portal_link(IssuePortalLink(candidate_id=st.candidate_id, actor=s.RECRUITER))
    identity = app.authenticate(link.token)
    me = f"candidate:{st.candidate_id}"

    with acting_as(identity):
        own = app.read_profile(
            ReadProfile(
                candidate_id=st.candidate_id,
                principal=me,
                role=Role.CANDIDATE,
                purpose="my own data",
            )
        )
        with pytest.raises(AccessRefusedError, match=ASSIGNMENTS_POLICY):
            app.read_profile(
                ReadProfile(
                    candidate_id=other.candidate_id,
                    principal=me,
                    role=Role.CANDIDATE,
                    purpose="curious",
                )
            )

    assert {f.name: f.value for f in own.fields}["name"] == "Li Lei"
    (read,) = accesses(app, st.candidate_id)
    assert (read.principal, read.authentication) == (me, "portal-link")
    assert read.policy_ids == ("candidate-reads-own-data",)
    (refused,) = accesses(app, other.candidate_id)
    assert (refused.outcome, refused.policy_ids) == ("refused", (ASSIGNMENTS_POLICY,))


# --- reads under an identity ---------------------------------------------------------------


def test_reads_name_how_their_principal_was_authenticated(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    token = add(app)
    profile = ReadProfile(
        candidate_id=st.candidate_id,
        principal=s.RECRUITER,
        role=Role.RECRUITER,
        purpose=s.PURPOSE,
    )

    app.read_profile(profile)  # the operator's command line
    with acting_as(app.authenticate(token)):
        app.read_profile(profile)
        app.record_disclosure(
            RecordDisclosure(
                candidate_id=st.candidate_id,
                recipient="regulator",
                purpose="inspection",
                channel="email",
                actor=s.RECRUITER,
            )
        )

    assert [a.authentication for a in accesses(app, st.candidate_id)] == ["operator", "token"]
    log = app.read_access_log(
        ReadAccessLog(
            candidate_id=st.candidate_id,
            principal=COMPLIANCE,
            role=Role.COMPLIANCE,
            purpose="audit",
        )
    )
    assert [(e.principal, e.authentication, e.outcome) for e in log.entries] == [
        (s.RECRUITER, "operator", "allowed"),
        (s.RECRUITER, "token", "allowed"),
        (s.RECRUITER, "token", "disclosed"),
    ]


def test_a_read_under_an_identity_takes_its_principal_and_role(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    identity = app.authenticate(add(app))

    with acting_as(identity):
        for field, principal, role in (
            ("principal", "hr:someone.else", Role.RECRUITER),
            ("role", s.RECRUITER, Role.COMPLIANCE),
        ):
            with pytest.raises(SetByAuthenticationError, match="set by authentication") as e:
                app.read_profile(
                    ReadProfile(
                        candidate_id=st.candidate_id,
                        principal=principal,
                        role=role,
                        purpose=s.PURPOSE,
                    )
                )
            assert e.value.field == field  # type: ignore[attr-defined]

    assert accesses(app, st.candidate_id) == []  # refused before anything was decided


def test_a_principal_reads_only_the_candidates_it_is_assigned_to(app: Backcheck) -> None:
    mine = s.consented_candidate(app)
    theirs = s.consented_candidate(app, "Han Meimei")  # registered by the same recruiter
    identity = app.authenticate(add(app, assignments=[str(mine.candidate_id)]))
    unconfined = app.authenticate(add(app, "hr:wu", role="compliance"))

    def read(candidate_id: UUID, who: Identity) -> dict[str, str | None]:
        with acting_as(who):
            view = app.read_profile(
                ReadProfile(
                    candidate_id=candidate_id,
                    principal=who.principal,
                    role=who.role,
                    purpose=s.PURPOSE,
                )
            )
        return {f.name: f.value for f in view.fields}

    assert read(mine.candidate_id, identity)["name"] == "Li Lei"
    with pytest.raises(AccessRefusedError, match=ASSIGNMENTS_POLICY):
        read(theirs.candidate_id, identity)
    with acting_as(identity), pytest.raises(AccessRefusedError, match=ASSIGNMENTS_POLICY):
        app.read_access_log(
            ReadAccessLog(
                candidate_id=theirs.candidate_id,
                principal=s.RECRUITER,
                role=Role.RECRUITER,
                purpose="who looked",
            )
        )
    # without assignments the policies alone decide (compliance sees no values without
    # break-glass, by its own policy, not by assignment)
    with pytest.raises(AccessRefusedError) as compliance:
        read(theirs.candidate_id, unconfined)
    assert ASSIGNMENTS_POLICY not in str(compliance.value)

    (allowed,) = accesses(app, mine.candidate_id)
    assert (allowed.outcome, allowed.authentication) == ("allowed", "token")
    refusals = accesses(app, theirs.candidate_id)
    assert [(a.principal, a.outcome, a.policy_ids) for a in refusals[:2]] == [
        (s.RECRUITER, "refused", (ASSIGNMENTS_POLICY,)),
        (s.RECRUITER, "refused", (ASSIGNMENTS_POLICY,)),
    ]
    assert refusals[1].view == "access log"
    assert ASSIGNMENTS_POLICY not in refusals[2].policy_ids


def test_a_confined_principal_changes_nothing_about_other_candidates(app: Backcheck) -> None:
    mine = s.investigation_under_way(app)
    theirs = s.investigation_under_way(app, "Han Meimei")
    link = app.issue_portal_link(IssuePortalLink(candidate_id=mine.candidate_id, actor="hr:li"))
    before = app.recorder.max_notification_id()

    with acting_as(app.authenticate(link.token)):
        with pytest.raises(OutsideAssignmentsError, match="nothing was recorded") as refused:
            app.give_feedback(
                GiveFeedback(
                    investigation_id=theirs.investigation, text="not mine", actor=s.CANDIDATE
                )
            )
        assert app.recorder.max_notification_id() == before
        app.give_feedback(
            GiveFeedback(investigation_id=mine.investigation, text="mine", actor=s.CANDIDATE)
        )

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.status, problem.exit_code) == (403, 5)
    assert app.recorder.max_notification_id() == (before or 0) + 1


def test_no_link_is_issued_under_a_candidates_name_another_principal_holds(
    app: Backcheck,
) -> None:
    """A store may hold a staff principal named candidate:<id> (added before such names were
    the portal links' alone): issuing that candidate's link would rotate it, handing the
    candidate a token in its role, unconfined. Refused, naming it; nothing is written
    (review, fourteenth session)."""
    candidate = s.register(app)
    name = portal_name(candidate)
    held = Principal._create(
        Principal.Added,
        name=name,
        role="compliance",
        assignments=(),
        token_hash="a" * 64,
        expires_at=None,
        kind="staff",
        added_by="operator",
    )
    app.save(held)
    head = app.recorder.max_notification_id()

    with pytest.raises(InvalidPrincipalError, match="not this candidate's portal link"):
        app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor=s.RECRUITER))

    assert app.recorder.max_notification_id() == head
