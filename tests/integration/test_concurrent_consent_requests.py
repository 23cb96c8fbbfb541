"""Two consent requests for one candidate at the same moment, on both backends, in real threads.

Each request also issues the candidate's portal link (their principal, added or rotated in the
request's own write). The callers addressed the candidate, never that principal: a collision on
it alone is decided again from a fresh load inside the use case, so both requests are recorded,
each a consent of its own, and the link written last is the one that works. What the caller
did address keeps its guard: an `If-Match` on the candidate that no longer holds is a 412.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

import pytest

from domain.consent import Consent
from domain.principal import Principal, portal_name, principal_id
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import ConsentResult, RequestConsent, RequestErasure
from services.intake import CommandIntake
from services.unit import Delivery
from tests import story as s
from tests.conftest import FakeClock
from tests.http import Served
from tests.integration.test_portal_links import token_in

T = TypeVar("T")


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def meet_before_writing(app: Backcheck, candidate: UUID, parties: int = 2) -> list[int]:
    """Holds each thread at its last look at the candidate's portal link before it writes
    (a consent request finds none and adds it, or loads it and rotates it) until `parties`
    threads have looked: every one of them has then decided on the same stored state before
    any writes. Later looks (a retry) pass. The store is the real one; returns the thread of
    each look-up of the link (one per try: it is loaded, or found missing)."""
    barrier = threading.Barrier(parties, timeout=30)
    link = principal_id(portal_name(candidate))
    met: set[int] = set()
    calls: list[int] = []
    load = app.load

    def meet() -> None:
        if threading.get_ident() not in met and len(met) < parties:
            met.add(threading.get_ident())
            barrier.wait()

    def loading(cls: type[Any], aggregate_id: UUID) -> Any:
        if aggregate_id != link:
            return load(cls, aggregate_id)
        calls.append(threading.get_ident())  # the one look at the link a try makes
        try:
            return load(cls, aggregate_id)
        finally:  # found (to rotate) or missing (to add)
            meet()

    app.load = loading  # type: ignore[method-assign]
    return calls


def together(*calls: Callable[[], T]) -> list[T | BaseException]:
    """Each call in a thread of its own, all started at once; what each returned or raised."""
    results: list[T | BaseException] = [RuntimeError("not run")] * len(calls)

    def run(i: int, call: Callable[[], T]) -> None:
        try:
            results[i] = call()
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def asking(app: Backcheck, candidate: UUID) -> Callable[[], ConsentResult]:
    return lambda: app.request_consent(
        RequestConsent(candidate_id=candidate, terms=s.terms_in(), actor=s.RECRUITER)
    )


def link_version(app: Backcheck, candidate: UUID) -> int:
    return app.load(Principal, principal_id(portal_name(candidate))).version


@pytest.mark.parametrize("linked_before", [False, True], ids=["first-link", "rotated-link"])
def test_two_consent_requests_at_once_are_both_recorded_and_the_last_link_works(
    app: Backcheck, settings: Settings, linked_before: bool
) -> None:
    candidate = s.register(app)
    if linked_before:
        asking(app, candidate)()
    before = link_version(app, candidate) if linked_before else 0
    looked = meet_before_writing(app, candidate)

    results = together(asking(app, candidate), asking(app, candidate))

    assert all(isinstance(r, ConsentResult) for r in results), results
    answers = [r for r in results if isinstance(r, ConsentResult)]
    assert len({a.consent_id for a in answers}) == 2
    assert [a.status for a in answers] == ["requested", "requested"]
    assert [a.portal_link and a.portal_link.status for a in answers] == ["delivered"] * 2
    assert len(looked) == 3  # both decided on one state; one of them decided again
    for answer in answers:
        assert app.load(Consent, answer.consent_id).candidate_id == candidate
    assert link_version(app, candidate) == before + 2  # one link each, one after the other
    token = token_in(settings, candidate)  # the link waiting to be sent opens the portal
    assert app.authenticate(token).principal == f"candidate:{candidate}"


def test_a_request_whose_if_match_no_longer_holds_is_refused_not_decided_again(
    app: Backcheck,
) -> None:
    """The collision retried is on what the caller did not address; the candidate it did
    address, changed since its read, still refuses it."""
    from services.errors import VersionMismatchError
    from services.versions import expecting

    candidate = s.register(app)
    read_at = app.version_of(candidate)
    assert read_at is not None
    app.request_erasure(RequestErasure(candidate_id=candidate, reason="asked", actor=s.RECRUITER))
    head = app.recorder.max_notification_id()
    with expecting({candidate: read_at}), pytest.raises(VersionMismatchError):
        asking(app, candidate)()
    assert app.recorder.max_notification_id() == head


def delivered(app: Backcheck, candidate: UUID, command_id: str) -> Callable[[], Any]:
    """The consent request as the command topic delivers it (services/intake.py)."""
    payload = {
        "candidate_id": str(candidate),
        "terms": s.terms_in().model_dump(mode="json"),
        "actor": s.RECRUITER,
    }
    delivery = Delivery("ats", command_id, "request-consent", "backcheck.commands.v1/0@7")
    return lambda: CommandIntake(app).apply(delivery, payload)


def test_two_requests_from_the_command_topic_at_once_are_both_applied(app: Backcheck) -> None:
    candidate = s.register(app)
    meet_before_writing(app, candidate)

    results = together(delivered(app, candidate, "c-1"), delivered(app, candidate, "c-2"))

    assert all(isinstance(r, ConsentResult) for r in results), results
    assert len({r.consent_id for r in results if isinstance(r, ConsentResult)}) == 2
    assert link_version(app, candidate) == 2


def test_one_command_delivered_twice_at_once_is_applied_once(app: Backcheck) -> None:
    """The collision on the link comes with one on the command's receipt, which its caller
    did name: that is no internal matter, and deciding it again would make a second
    consent. One delivery is applied; the other is told it was."""
    candidate = s.register(app)
    meet_before_writing(app, candidate)
    head = app.recorder.max_notification_id() or 0

    results = together(delivered(app, candidate, "c-1"), delivered(app, candidate, "c-1"))

    assert sorted(type(r).__name__ for r in results) == [
        "CommandAlreadyAppliedError",
        "ConsentResult",
    ], results
    assert link_version(app, candidate) == 1
    assert app.recorder.max_notification_id() == head + 3  # consent, link, receipt: once


def test_two_consent_requests_over_http_at_once_are_both_201(api: Served) -> None:
    """One sent with an Idempotency-Key (applied as a delivered command, its receipt in the
    same write), one with the candidate's ETag as If-Match: the collision on the link is
    decided again for either, the receipt and the If-Match still holding."""
    candidate = s.register(api.app)
    meet_before_writing(api.app, candidate)
    path = f"/v1/candidates/{candidate}/consents"
    body = {"terms": s.terms_in().model_dump(mode="json")}
    head = api.head()

    def post(**headers: str) -> Callable[[], Any]:
        return lambda: api.post(s.RECRUITER, path, body, **headers)

    answers = together(post(**{"If-Match": '"1"'}), post(**{"Idempotency-Key": "ats-41"}))

    assert [getattr(a, "status_code", a) for a in answers] == [201, 201], answers
    made = [a.json() for a in answers if not isinstance(a, BaseException)]
    assert len({a["consent_id"] for a in made}) == 2
    assert [a["portal_link"]["status"] for a in made] == ["delivered", "delivered"]
    assert link_version(api.app, candidate) == 2
    api.sent_link(candidate)
    me = api.client.get("/v1/me", headers=api.as_(f"candidate:{candidate}"))
    assert me.status_code == 200, me.text
    again = api.post(s.RECRUITER, path, body, **{"Idempotency-Key": "ats-41"})
    assert again.headers["idempotent-replayed"] == "true"
    assert api.head() > head
