"""The portal link sent with a consent request, on both backends: issued (or replaced) in the
request's own write, handed to the outbox only once both are recorded, as a file the owner
alone may read; it opens the candidate's own data and nothing else; a revoked link is never
sent again; a link the outbox cannot take leaves the request recorded and says how to send it
again; and no token is ever in an answer or an event."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.consent import Consent
from domain.errors import AccessRefusedError, CandidateErasedError
from domain.principal import portal_name, principal_id
from infra.bootstrap import build_app
from infra.config import PUBLIC_URL, Settings
from infra.http import examples
from infra.outbox.links import FOLDER, LinkOutbox
from infra.store.transcoder import EventTooLargeError
from services.access import Role
from services.application import Backcheck
from services.dto import (
    ConsentResult,
    IssuePortalLink,
    ReadProfile,
    RequestConsent,
    RequestErasure,
    RevokePrincipal,
)
from services.errors import AuthenticationError
from services.identity import ASSIGNMENTS_POLICY, acting_as
from services.ports import PortalLink
from services.principals import PORTAL_DAYS
from tests import story as s
from tests.conftest import FakeClock
from tests.http import served

PORTAL = {"X-Backcheck-Portal": "1"}


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def ask(app: Backcheck, candidate: UUID) -> ConsentResult:
    return app.request_consent(
        RequestConsent(candidate_id=candidate, terms=s.terms_in(), actor=s.RECRUITER)
    )


def sent(settings: Settings, candidate: UUID) -> Path:
    return settings.outbox_dir / FOLDER / f"{candidate}.json"


def token_in(settings: Settings, candidate: UUID) -> str:
    """The token of the link sent to the candidate, as whoever sends it on reads it."""
    url: str = json.loads(sent(settings, candidate).read_bytes())["url"]
    base, _, token = url.partition("/portal#token=")
    assert base == PUBLIC_URL
    return token


def stored_states(app: Backcheck) -> bytes:
    """Every stored event as stored (state column), one after another."""
    return b"".join(
        bytes(n.state) for n in app.recorder.select_notifications(start=1, limit=10_000)
    )


def read_profile(app: Backcheck, token: str, candidate: UUID) -> dict[str, str | None]:
    identity = app.authenticate(token)
    with acting_as(identity):
        profile = app.read_profile(
            ReadProfile(
                candidate_id=candidate,
                principal=identity.principal,
                role=Role.CANDIDATE,
                purpose="my own data",
            )
        )
    return {f.name: f.value for f in profile.fields}


def test_asking_for_consent_sends_the_candidate_a_link_to_their_own_data_alone(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    # given
    candidate = s.register(app)
    other = s.register(app, "Han Meimei")
    before = app.recorder.max_notification_id()
    # when
    asked = ask(app, candidate)
    # then: the request and the link in one write
    assert app.recorder.max_notification_id() == (before or 0) + 2
    assert [(e.aggregate, e.event) for e in app.iter_events()][-2:] == [
        ("Consent", "Requested"),
        ("Principal", "Added"),
    ]
    # and the answer says where the link went, and until when it works
    assert asked.status == "requested"
    assert asked.portal_link is not None
    expires = clock.now + timedelta(days=PORTAL_DAYS)
    assert asked.portal_link.model_dump() == {
        "status": "delivered",
        "detail": f"outbox/portal-links/{candidate}.json",
        "expires_at": expires,
    }
    # and the file is there, the owner's alone, in directories the owner's alone
    path = sent(settings, candidate)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.outbox_dir.stat().st_mode) == 0o700
    document = json.loads(path.read_bytes())
    assert set(document) == {"candidate_id", "url", "expires_at", "version"}
    assert document["version"] == 1  # the link principal's first version
    assert document["candidate_id"] == str(candidate)
    assert datetime.fromisoformat(document["expires_at"]) == expires
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    # and its token is the candidate's, confined to them
    token = token_in(settings, candidate)
    identity = app.authenticate(token)
    assert (identity.principal, identity.role) == (portal_name(candidate), Role.CANDIDATE)
    assert identity.assignments == frozenset({candidate})
    assert identity.expires_at == expires
    assert read_profile(app, token, candidate)["name"] == "Li Lei"
    with pytest.raises(AccessRefusedError, match=ASSIGNMENTS_POLICY):
        read_profile(app, token, other)
    # and it stops working when it says
    clock.advance(days=PORTAL_DAYS)
    with pytest.raises(AuthenticationError, match="token expired"):
        app.authenticate(token)


def test_asking_again_replaces_the_link_and_the_old_one_is_refused(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    candidate = s.register(app)
    ask(app, candidate)
    first = token_in(settings, candidate)
    clock.advance(days=3)

    again = ask(app, candidate)

    second = token_in(settings, candidate)
    assert second != first
    with pytest.raises(AuthenticationError, match="unknown token"):
        app.authenticate(first)
    assert app.authenticate(second).principal == portal_name(candidate)
    assert again.portal_link is not None
    assert again.portal_link.expires_at == clock.now + timedelta(days=PORTAL_DAYS)
    assert [(e.aggregate, e.event) for e in app.iter_events()][-2:] == [
        ("Consent", "Requested"),
        ("Principal", "TokenRotated"),
    ]
    assert len(app.of_subject(Consent, candidate)) == 2


def test_a_link_issued_by_hand_replaces_the_one_waiting_to_be_sent(
    app: Backcheck, settings: Settings
) -> None:
    # given: the link sent with the request waits in the outbox
    candidate = s.register(app)
    ask(app, candidate)
    waiting = token_in(settings, candidate)
    # when: an operator issues the link again
    issued = app.issue_portal_link(IssuePortalLink(candidate_id=candidate, actor="op"))
    # then: the outbox holds the new link, the one that works; the old one is refused
    assert issued.sent.status == "delivered"
    assert issued.sent.detail == f"outbox/portal-links/{candidate}.json"
    assert token_in(settings, candidate) == issued.token
    assert app.authenticate(issued.token).principal == portal_name(candidate)
    with pytest.raises(AuthenticationError, match="unknown token"):
        app.authenticate(waiting)


def test_a_revoked_link_is_not_sent_again_and_the_consent_is_still_asked_for(
    app: Backcheck, settings: Settings
) -> None:
    # given: the candidate's link was revoked
    candidate = s.register(app)
    ask(app, candidate)
    revoked = token_in(settings, candidate)
    app.revoke_principal(
        RevokePrincipal(name=portal_name(candidate), reason="phone lost", actor="operator")
    )
    sent(settings, candidate).unlink()
    before = app.recorder.max_notification_id()
    # when
    asked = ask(app, candidate)
    # then: the request alone is recorded, and no link sent
    assert app.recorder.max_notification_id() == (before or 0) + 1
    assert [(e.aggregate, e.event) for e in app.iter_events()][-1] == ("Consent", "Requested")
    assert asked.status == "requested"
    assert asked.portal_link is not None
    assert asked.portal_link.status == "revoked"
    assert asked.portal_link.expires_at is None
    assert "revoked" in asked.portal_link.detail
    assert not sent(settings, candidate).exists()
    with pytest.raises(AuthenticationError, match="token revoked"):
        app.authenticate(revoked)


def test_a_refused_request_issues_no_link(app: Backcheck, settings: Settings) -> None:
    candidate = s.register(app)
    app.request_erasure(
        RequestErasure(candidate_id=candidate, reason="withdrew my application", actor=s.CANDIDATE)
    )
    before = app.recorder.max_notification_id()

    with pytest.raises(CandidateErasedError):
        ask(app, candidate)

    assert app.recorder.max_notification_id() == before
    assert not app.exists(principal_id(portal_name(candidate)))
    assert not sent(settings, candidate).exists()


@pytest.mark.parametrize("in_the_way", ["the outbox folder", "the link's own file"])
def test_a_link_that_cannot_be_written_leaves_the_consent_recorded_and_says_how_to_send_it(
    app: Backcheck, settings: Settings, in_the_way: str
) -> None:
    # given: a file where the outbox's folder must be, or a directory where the file goes
    candidate = s.register(app)
    folder = settings.outbox_dir / FOLDER
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    if in_the_way == "the outbox folder":
        folder.write_text("not a folder")
    else:
        (folder / f"{candidate}.json").mkdir(parents=True)
    before = app.recorder.max_notification_id()
    # when
    asked = ask(app, candidate)
    # then: the request and the link are recorded all the same
    assert app.recorder.max_notification_id() == (before or 0) + 2
    assert app.get_consent(asked.consent_id).status == "requested"
    assert app.exists(principal_id(portal_name(candidate)))
    # and the answer says the link did not go, why, and how to send it again
    assert asked.portal_link is not None
    assert asked.portal_link.status == "undelivered"
    detail = asked.portal_link.detail
    assert "outbox/portal-links" in detail  # named under the data directory
    assert str(settings.data_dir) not in detail  # never the server's own path (HTTP sees it)
    assert f"backcheck principals portal-link {candidate}" in detail
    assert "bck_" not in detail


def test_no_token_is_in_the_http_answer_or_any_event(settings: Settings, clock: FakeClock) -> None:
    app = build_app(settings, clock=clock)
    try:
        with served(app, settings) as api:
            candidate = s.register(app)
            answered = api.post(
                s.RECRUITER,
                f"/v1/candidates/{candidate}/consents",
                examples.COMMANDS["request-consent"][1],
            )
            token = token_in(settings, candidate)
            # the link opens the candidate's portal
            session = api.client.post(
                "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
            )
            events = stored_states(app).decode()
    finally:
        app.close()

    assert answered.status_code == 201, answered.text
    link: dict[str, Any] = answered.json()["portal_link"]
    assert (link["status"], link["detail"]) == (
        "delivered",
        f"outbox/portal-links/{candidate}.json",
    )
    assert session.status_code == 200, session.text
    assert session.json()["candidate_id"] == str(candidate)
    shown = answered.text + "".join(f"{k}: {v}" for k, v in answered.headers.items())
    secret = token[37:]  # after `bck_<32 hex>_`
    assert len(secret) == 43
    assert f"candidate:{candidate}" in events  # the link's principal is there
    for found in (shown, events):
        assert token not in found
        assert secret not in found


def test_a_request_the_store_refuses_records_no_link_and_sends_none(
    settings: Settings, clock: FakeClock
) -> None:
    # given: a store that takes no event over 1024 bytes, and a request whose event is larger
    small = settings.model_copy(update={"max_event_bytes": 1024})
    app = build_app(small, clock=clock)
    try:
        candidate = s.register(app)
        asked = s.terms_in(purposes=[f"purpose {n}: " + "x" * 40 for n in range(30)])
        before = app.recorder.max_notification_id()
        # when
        with pytest.raises(EventTooLargeError):
            app.request_consent(
                RequestConsent(candidate_id=candidate, terms=asked, actor=s.RECRUITER)
            )
        # then: neither the request nor the link was written, and nothing was sent
        assert app.recorder.max_notification_id() == before
        assert not app.exists(principal_id(portal_name(candidate)))
        assert not sent(small, candidate).exists()
    finally:
        app.close()


def test_a_link_on_its_way_shows_no_token_when_printed() -> None:
    link = PortalLink(UUID(int=7), "bck_" + "0" * 32 + "_" + "s" * 43, datetime(2026, 4, 1))
    assert "bck_" not in repr(link)
    assert "sss" not in str(link)


def test_a_link_reaching_the_outbox_after_a_later_one_does_not_replace_it(
    tmp_path: Path,
) -> None:
    """Two links issued at once may be handed on in the other order than they were recorded;
    the one that stays is the later, the one that works."""
    outbox = LinkOutbox(tmp_path / "outbox", lambda token: f"{PUBLIC_URL}/portal#token={token}")
    candidate = UUID(int=7)
    later = PortalLink(candidate, "bck_" + "0" * 32 + "_" + "L" * 43, datetime(2026, 4, 2), 3)
    earlier = PortalLink(candidate, "bck_" + "0" * 32 + "_" + "E" * 43, datetime(2026, 4, 1), 2)
    assert outbox.deliver(later) == f"outbox/portal-links/{candidate}.json"
    kept = outbox.deliver(earlier)
    assert kept.startswith(f"outbox/portal-links/{candidate}.json (replaced there by a later")
    document = json.loads((outbox.directory / f"{candidate}.json").read_bytes())
    assert (document["url"].endswith("L" * 43), document["version"]) == (True, 3)
    newer = PortalLink(candidate, "bck_" + "0" * 32 + "_" + "N" * 43, datetime(2026, 4, 3), 4)
    assert outbox.deliver(newer) == f"outbox/portal-links/{candidate}.json"
    document = json.loads((outbox.directory / f"{candidate}.json").read_bytes())
    assert (document["url"].endswith("N" * 43), document["version"]) == (True, 4)
    assert [p.name for p in outbox.directory.iterdir()] == [f"{candidate}.json"]
