"""The candidate portal on both backends: the link exchanged for an HttpOnly, SameSite=Strict
session that holds no token (portal links only, while they are valid; how a session ends:
test_portal_sessions.py), cookie calls refused without the portal's header, consent granted
and withdrawn from the page's own calls, who sees what equal to what each reader really
reads, and the access package: every value and every access, its own disclosure recorded
first, for the candidate alone (or compliance on their behalf)."""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.http.auth import PORTAL_COOKIE
from services.access import Role
from services.consents import portal_document
from services.dto import (
    ClaimIn,
    ConsentTermsIn,
    PersonalFieldIn,
    ReadAccessLog,
    RevokePrincipal,
    SubmitClaims,
    WithdrawConsent,
)
from services.principals import token_hash
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, Served, problem, served
from tests.story import (
    DOCUMENT_SHA256,
    HIRING_MANAGER,
    PURPOSE,
    RECRUITER,
    REVIEWER,
    disclose,
    register,
    request_consent,
    shared_report,
    terms_in,
)

PORTAL = {"X-Backcheck-Portal": "1"}
MY_PURPOSE = "my own data (portal)"


def sign_in(api: Served, candidate: UUID) -> Any:
    """Opens the portal's session from the candidate's link, as the page does."""
    token = api.portal(candidate)
    return api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )


def shown_sha256(consent: UUID, terms: ConsentTermsIn) -> str:
    """The SHA-256 the page shows of the document it has the candidate sign."""
    return hashlib.sha256(portal_document(consent, terms).encode()).hexdigest()


def access_log(api: Served, candidate: UUID) -> list[dict[str, Any]]:
    log = api.app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    )
    return [e.model_dump(mode="json") for e in log.entries]


def with_employment_claims(api: Served, candidate: UUID) -> None:
    api.app.submit_claims(
        SubmitClaims(
            candidate_id=candidate,
            claims=[
                ClaimIn(
                    kind="employment",
                    fields=[
                        PersonalFieldIn(
                            name="employer", category="user.employment.employer", value="Acme"
                        ),
                        PersonalFieldIn(
                            name="title", category="user.employment.title", value="Engineer"
                        ),
                    ],
                )
            ],
            actor=RECRUITER,
        )
    )


# --- the session --------------------------------------------------------------------------


def test_the_link_opens_an_http_only_strict_session_that_holds_no_token(api: Served) -> None:
    candidate = register(api.app)
    opened = sign_in(api, candidate)
    assert opened.status_code == 200, opened.text
    assert opened.json()["principal"] == f"candidate:{candidate}"
    cookie = opened.headers["set-cookie"]
    token = api.tokens[f"candidate:{candidate}"]
    # a session id of 256 random bits (infra/http/sessions.py), and nothing of the link
    assert re.fullmatch(r"backcheck_portal=[A-Za-z0-9_-]{43}", cookie.split(";")[0]), cookie
    # bck_<principal hex>_<secret>: the secret is 43 url-safe characters and may hold "_" itself
    _, principal_hex, secret = token.split("_", 2)
    assert len(secret) == 43, token
    assert secret not in cookie  # nothing of the link
    assert principal_hex not in cookie
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http on the test client; https sets it
    assert "max-age=28800" in attributes  # 8 hours (the link's 30 days are longer), no more
    ends = datetime.fromisoformat(opened.json()["expires_at"])
    assert ends == api.app.clock() + timedelta(hours=8)
    assert opened.json()["idle_seconds"] == 1800

    me = api.client.get("/v1/me", headers=PORTAL)  # the cookie alone signs in
    assert me.status_code == 200, me.text
    assert me.json()["principal"] == f"candidate:{candidate}"
    assert me.json()["authentication"] == "portal-link"


def test_over_https_the_session_cookie_is_secure(api: Served) -> None:
    candidate = register(api.app)
    token = api.portal(candidate)
    opened = api.client.post(
        "https://testserver/portal/session",
        headers={"Authorization": f"Bearer {token}", **PORTAL},
    )
    assert opened.status_code == 200, opened.text
    assert "secure" in {a.strip().lower() for a in opened.headers["set-cookie"].split(";")}


def test_a_staff_token_opens_no_portal_session(api: Served) -> None:
    refused = api.client.post("/portal/session", headers=api.as_(RECRUITER, **PORTAL))
    problem(refused, 403, "not-a-portal-link")
    assert "set-cookie" not in refused.headers


def test_an_expired_or_revoked_link_opens_no_session_and_ends_one(
    api: Served, clock: FakeClock
) -> None:
    candidate = register(api.app)
    assert sign_in(api, candidate).status_code == 200
    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="sent to a wrong address", actor="op")
    )
    problem(api.client.get("/v1/me", headers=PORTAL), 401, "unauthenticated")  # the cookie too
    revoked = api.client.post(
        "/portal/session", headers=api.as_(f"candidate:{candidate}", **PORTAL)
    )
    problem(revoked, 401, "unauthenticated")
    assert "revoked" in revoked.json()["detail"]

    other = register(api.app, "Han Meimei")
    token = api.portal(other)
    clock.advance(days=31)
    expired = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    problem(expired, 401, "unauthenticated")
    assert "expired" in expired.json()["detail"]
    assert "set-cookie" not in expired.headers


def test_signing_out_clears_the_cookie(api: Served) -> None:
    candidate = register(api.app)
    assert sign_in(api, candidate).status_code == 200
    out = api.client.delete("/portal/session", headers=PORTAL)
    assert out.status_code == 204
    cleared = out.headers["set-cookie"]
    assert cleared.startswith("backcheck_portal=")
    assert "max-age=0" in cleared.lower()
    problem(api.client.get("/v1/me", headers=PORTAL), 401, "unauthenticated")


def test_the_portal_s_own_problems_name_their_instance_as_a_route_s_do(api: Served) -> None:
    """README promises every problem an `instance`; the header check (a middleware, ahead of
    the routes) and the portal's missing asset answered without one."""
    candidate = register(api.app)
    assert sign_in(api, candidate).status_code == 200
    read = f"/v1/candidates/{candidate}/access-log"
    header = problem(api.client.get(read, params={"purpose": "x"}), 403, "portal-header-missing")
    assert header["instance"] == read
    session = problem(api.client.delete("/portal/session"), 403, "portal-header-missing")
    assert session["instance"] == "/portal/session"
    asset = problem(api.client.get("/portal/static/nothing.js"), 404, "not-found")
    assert asset["instance"] == "/portal/static/nothing.js"


def test_a_cookie_call_without_the_portal_header_is_refused_and_records_nothing(
    api: Served,
) -> None:
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    assert sign_in(api, candidate).status_code == 200
    head = api.head()
    withdraw = f"/v1/consents/{consent}/withdrawal"
    problem(api.client.post(withdraw, json={"reason": "x"}), 403, "portal-header-missing")
    read = f"/v1/candidates/{candidate}/access-log?purpose=x"
    problem(api.client.get(read), 403, "portal-header-missing")
    problem(api.client.delete("/portal/session"), 403, "portal-header-missing")
    assert api.head() == head
    # a bearer token is no browser's doing: no header needed
    api.client.cookies.clear()
    assert (
        api.get(
            f"candidate:{candidate}", f"/v1/candidates/{candidate}/consents", purpose=MY_PURPOSE
        ).status_code
        == 200
    )


def test_signing_in_or_out_without_the_portal_header_is_refused_in_words_for_what_was_sent(
    api: Served,
) -> None:
    """The sign-in needs the header too, though it carries no cookie: its refusal says what
    the request did (signing in, signing out), not that a cookie was sent (review, fourteenth
    session: it spoke of "a call made with the portal's session cookie" to a request with
    none)."""
    candidate = register(api.app)
    token = api.portal(candidate)
    head = api.head()
    assert not api.client.cookies

    signing_in = api.client.post("/portal/session", headers={"Authorization": f"Bearer {token}"})
    signing_out = api.client.delete("/portal/session")

    assert problem(signing_in, 403, "portal-header-missing")["detail"] == (
        "signing in to the portal (`POST /portal/session`) must send `X-Backcheck-Portal: 1` "
        "(the portal page does); without it, it could have come from another site"
    )
    assert "set-cookie" not in signing_in.headers
    assert problem(signing_out, 403, "portal-header-missing")["detail"] == (
        "signing out of the portal (`DELETE /portal/session`) must send "
        "`X-Backcheck-Portal: 1` (the portal page does); without it, it could have come from "
        "another site"
    )
    assert api.head() == head, "no session was opened, so none was recorded"
    # a call made with the cookie is still told of the cookie
    assert sign_in(api, candidate).status_code == 200
    read = f"/v1/candidates/{candidate}/access-log?purpose=x"
    assert problem(api.client.get(read), 403, "portal-header-missing")["detail"] == (
        "a call made with the portal's session cookie must send `X-Backcheck-Portal: 1` "
        "(the portal page does); without it, it could have come from another site"
    )


# --- consent from the portal --------------------------------------------------------------


def test_the_candidate_grants_then_withdraws_consent_from_the_portal(api: Served) -> None:
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    assert sign_in(api, candidate).status_code == 200
    start = api.app.clock()
    narrower = terms_in(check_types=["employment"])  # less than asked: allowed
    granted = api.client.post(
        f"/v1/consents/{consent}/grant",
        json={
            "terms": narrower.model_dump(mode="json"),
            "document_sha256": shown_sha256(consent, narrower),
            "signature_method": "clickwrap",
            "valid_from": start.isoformat(),
            "valid_until": (start + timedelta(days=90)).isoformat(),
        },
        headers=PORTAL,
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["status"] == "active"

    withdrawn = api.client.post(
        f"/v1/consents/{consent}/withdrawal", json={"reason": "changed my mind"}, headers=PORTAL
    )
    assert withdrawn.status_code == 200, withdrawn.text
    register_now = api.client.get(
        f"/v1/candidates/{candidate}/consents", params={"purpose": MY_PURPOSE}, headers=PORTAL
    ).json()
    assert [c["status"] for c in register_now["consents"]] == ["withdrawn"]
    who = {e.event: e.who for e in api.app.timeline(candidate) if e.aggregate_id == consent}
    assert who["Consent.Granted"] == f"candidate:{candidate}"
    assert who["Consent.Withdrawn"] == f"candidate:{candidate}"


def test_a_portal_grant_signs_the_document_the_portal_shows_and_no_other(api: Served) -> None:
    """The page shows the SHA-256 of the terms as the candidate grants them; a clickwrap grant
    made with the link carrying any other well-formed hash is refused naming the field and
    the rule, and nothing is recorded."""
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    assert sign_in(api, candidate).status_code == 200
    start = api.app.clock()
    narrower = terms_in(check_types=["employment"])
    grant = {
        "terms": narrower.model_dump(mode="json"),
        "document_sha256": shown_sha256(consent, narrower),
        "signature_method": "clickwrap",
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=90)).isoformat(),
    }
    head = api.head()
    wider_document = shown_sha256(consent, terms_in())  # the terms as asked, not as granted
    for other in (DOCUMENT_SHA256, wider_document):
        refused = problem(
            api.client.post(
                f"/v1/consents/{consent}/grant",
                json=grant | {"document_sha256": other},
                headers=PORTAL,
            ),
            422,
            "GrantNotOfTheDocumentShown",
        )
        assert refused["field"] == "document_sha256"
        assert [e["field"] for e in refused["errors"]] == ["document_sha256"]
        assert "field 'document_sha256'" in refused["detail"]
    assert api.head() == head

    granted = api.client.post(f"/v1/consents/{consent}/grant", json=grant, headers=PORTAL)
    assert granted.status_code == 200, granted.text
    assert api.app.repository.get(consent).document_sha256 == grant["document_sha256"]


def test_a_candidate_grants_only_the_portals_document_whichever_method_they_claim(
    api: Served,
) -> None:
    """The portal link sent straight to the API (a bearer token, no page) granted with
    `e_signature` or `wet_ink` and any hash, which was recorded as the document the candidate
    signed. A grant made with the link is the portal's clickwrap, of the document it shows:
    another method is refused naming `signature_method`, and nothing is recorded; the
    clickwrap of the shown document is taken the same way."""
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    me = f"candidate:{candidate}"
    api.portal(candidate)
    start = api.app.clock()
    terms = terms_in()
    grant = {
        "terms": terms.model_dump(mode="json"),
        "document_sha256": DOCUMENT_SHA256,
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=90)).isoformat(),
    }
    head = api.head()
    for method, sha256 in [
        ("e_signature", DOCUMENT_SHA256),
        ("wet_ink", DOCUMENT_SHA256),
        ("e_signature", shown_sha256(consent, terms)),  # even the page's: not what it signs
    ]:
        refused = problem(
            api.post(
                me,
                f"/v1/consents/{consent}/grant",
                grant | {"signature_method": method, "document_sha256": sha256},
            ),
            422,
            "GrantNotOfTheDocumentShown",
        )
        assert refused["field"] == "signature_method"
        assert [e["field"] for e in refused["errors"]] == ["signature_method"]
        assert f"not {method!r}" in refused["detail"]
    clickwrap = grant | {"signature_method": "clickwrap"}
    problem(
        api.post(me, f"/v1/consents/{consent}/grant", clickwrap), 422, "GrantNotOfTheDocumentShown"
    )
    assert api.head() == head

    granted = api.post(
        me,
        f"/v1/consents/{consent}/grant",
        clickwrap | {"document_sha256": shown_sha256(consent, terms)},
    )
    assert granted.status_code == 200, granted.text
    assert api.app.repository.get(consent).signature_method == "clickwrap"


def test_a_service_records_the_hash_of_a_document_signed_elsewhere_as_given(
    api: Served,
) -> None:
    """An e-signature is a document backcheck never sees: its hash, given by the e-signature
    service with its token, is recorded as it is."""
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    api.issue("svc:esign", Role.SERVICE)
    start = api.app.clock()
    granted = api.post(
        "svc:esign",
        f"/v1/consents/{consent}/grant",
        {
            "terms": terms_in().model_dump(mode="json"),
            "document_sha256": DOCUMENT_SHA256,
            "signature_method": "e_signature",
            "valid_from": start.isoformat(),
            "valid_until": (start + timedelta(days=90)).isoformat(),
        },
    )
    assert granted.status_code == 200, granted.text
    assert api.app.repository.get(consent).document_sha256 == DOCUMENT_SHA256


# --- erasure -------------------------------------------------------------------------------


def test_the_candidate_reads_that_their_erasure_request_is_pending_and_since_when(
    api: Served, clock: FakeClock
) -> None:
    """What the page shows of an erasure request: the profile says one is pending, and the
    candidate's own timeline, which the page reads for it, says when it was asked for."""
    candidate = register(api.app)
    assert sign_in(api, candidate).status_code == 200

    def profile() -> Any:
        read = api.client.get(
            f"/v1/candidates/{candidate}/profile", params={"purpose": MY_PURPOSE}, headers=PORTAL
        )
        assert read.status_code == 200, read.text
        return read.json()

    assert (profile()["erasure_requested"], profile()["erased"]) == (False, False)
    clock.advance(minutes=7)
    asked_at = api.app.clock()
    asked = api.client.post(
        f"/v1/candidates/{candidate}/erasure-request",
        json={"reason": "I took another offer"},
        headers=PORTAL,
    )
    assert asked.status_code == 200, asked.text

    assert (profile()["erasure_requested"], profile()["erased"]) == (True, False)
    timeline = api.client.get(
        f"/v1/candidates/{candidate}/timeline", params={"purpose": MY_PURPOSE}, headers=PORTAL
    )
    assert timeline.status_code == 200, timeline.text
    (entry,) = [e for e in timeline.json()["entries"] if e["event"] == "Candidate.ErasureRequested"]
    assert datetime.fromisoformat(entry["time"]) == asked_at


# --- who sees what ------------------------------------------------------------------------


def test_who_sees_what_is_what_each_reader_really_reads(api: Served) -> None:
    story = shared_report(api.app)
    candidate = story.candidate_id
    with_employment_claims(api, candidate)
    disclose(api.app, story)
    api.issue(HIRING_MANAGER, Role.HIRING_MANAGER)
    api.portal(candidate)
    head = api.head()
    asked = api.get(f"candidate:{candidate}", f"/v1/candidates/{candidate}/visibility")
    assert asked.status_code == 200, asked.text
    assert api.head() == head  # decided, not recorded: no value was read
    view = asked.json()
    assert view["purposes"] == [PURPOSE]
    stand_in = {"reviewer": REVIEWER, "compliance": COMPLIANCE}

    for reader in view["readers"]:
        name = reader["principal"] or stand_in[reader["role"]]
        read = api.get(name, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
        if read.status_code == 403:
            really: set[str] = set()
        else:
            assert read.status_code == 200, read.text
            really = {f["category"] for f in read.json()["fields"] if not f["withheld"]}
        assert set(reader["allowed"]) == really, reader
        assert set(reader["withheld"]).isdisjoint(really)

    by_role = {r["role"] for r in view["readers"]}
    assert by_role == {
        "recruiter",
        "investigator",
        "reviewer",
        "hiring_manager",
        "compliance",
        "candidate",
    }
    manager = next(r for r in view["readers"] if r["role"] == "hiring_manager")
    assert set(manager["allowed"]) == {"user.employment.employer", "user.employment.title"}
    assert "user.name" in manager["withheld"]
    assert {c["kind"] for c in view["cases"]} == {"investigation", "report"}


def test_only_the_candidate_and_compliance_see_who_sees_what(api: Served) -> None:
    candidate = register(api.app)
    other = register(api.app, "Han Meimei")
    api.portal(other)
    path = f"/v1/candidates/{candidate}/visibility"
    problem(api.get(f"candidate:{other}", path), 403, "outside-assignments")
    problem(api.get(RECRUITER, path), 403, "use-case-not-permitted")
    assert api.get(COMPLIANCE, path).status_code == 200


# --- the access package -------------------------------------------------------------------


def test_the_access_package_holds_every_value_and_every_access_its_disclosure_first(
    api: Served,
) -> None:
    story = shared_report(api.app)
    candidate = story.candidate_id
    assert api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
    assert sign_in(api, candidate).status_code == 200

    got = api.client.post(f"/v1/candidates/{candidate}/access-package", headers=PORTAL)
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == (
        f'attachment; filename="access-package-{candidate}.json"'
    )
    package = got.json()
    disclosure = package["disclosure_id"]
    assert got.headers["x-disclosure-id"] == disclosure

    values = {f["name"]: f["value"] for f in package["profile"]["fields"]}
    assert values == {"name": "Li Lei", "email": "li.lei@example.com"}
    assert [i["investigation_id"] for i in package["investigations"]] == [str(story.investigation)]
    assert [r["report_id"] for r in package["reports"]] == [str(story.report)]
    assert all(not item["withheld"] for item in package["reports"][0]["items"])
    assert package["consents"]["consents"][0]["status"] == "active"
    assert package["timeline"]["entries"]

    entries = package["access_log"]["entries"]
    ids = [e["access_id"] for e in entries]
    everything = [e["access_id"] for e in access_log(api, candidate)]  # read after, by compliance
    assert ids == [i for i in everything if i != package["access_log"]["access_id"]]
    mine = entries[ids.index(disclosure)]
    assert mine["outcome"] == "disclosed"
    assert mine["principal"] == f"candidate:{candidate}"
    assert mine["view"] == f"access package to candidate:{candidate}"
    assert ids.index(disclosure) < ids.index(package["profile"]["access_id"])
    assert any(e["principal"] == RECRUITER for e in entries)


def test_a_candidate_gets_no_one_elses_package_and_nothing_is_recorded(api: Served) -> None:
    candidate = register(api.app)
    other = register(api.app, "Han Meimei")
    assert sign_in(api, other).status_code == 200
    head = api.head()
    path = f"/v1/candidates/{candidate}/access-package"
    problem(api.client.post(path, headers=PORTAL), 403, "outside-assignments")
    api.client.cookies.clear()
    problem(api.post(RECRUITER, path), 403, "use-case-not-permitted")
    problem(api.post(f"candidate:{other}", f"/v1/candidates/{UUID(int=7)}/access-package"), 403)
    assert api.head() == head


def test_compliance_makes_the_package_on_the_candidates_behalf(api: Served) -> None:
    candidate = register(api.app)
    got = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")
    assert got.status_code == 200, got.text
    package = got.json()
    entries = {e["access_id"]: e for e in package["access_log"]["entries"]}
    disclosure = entries[package["disclosure_id"]]
    assert (disclosure["principal"], disclosure["authentication"]) == (COMPLIANCE, "token")
    profile = entries[package["profile"]["access_id"]]
    assert profile["principal"] == f"candidate:{candidate}"
    assert profile["purpose"].endswith(f"made by {COMPLIANCE}")
    assert package["profile"]["fields"][0]["value"] == "Li Lei"


def test_the_package_lists_the_portal_links_issued_revoked_and_used_never_a_token(
    api: Served,
) -> None:
    """The links are data about the candidate: who issued them and when, until when, who
    revoked them and why, and each read made with one; the tokens and their hashes stay out."""
    candidate = register(api.app)
    request_consent(api.app, candidate)  # the request sends the first link
    first = api.sent_link(candidate)
    second = api.portal(candidate)  # issued again: the first is refused from now on
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {second}", **PORTAL}
    )
    assert opened.status_code == 200, opened.text
    read = api.client.get(
        f"/v1/candidates/{candidate}/profile", params={"purpose": MY_PURPOSE}, headers=PORTAL
    )
    assert read.status_code == 200, read.text
    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="phone lost", actor=RECRUITER)
    )

    got = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")

    assert got.status_code == 200, got.text
    links = got.json()["portal_links"]
    assert links["principal"] == f"candidate:{candidate}"
    assert [(e["event"], e["by"]) for e in links["events"]] == [
        ("issued", RECRUITER),
        ("issued again", RECRUITER),
        ("revoked", RECRUITER),
    ]
    assert links["events"][0]["expires_at"] is not None
    assert links["events"][2]["reason"] == "phone lost"
    assert [(u["access_id"], u["view"]) for u in links["used"]] == [
        (read.json()["access_id"], "profile")
    ]
    for token in (first, second):
        assert token not in got.text
        assert token_hash(token) not in got.text


def test_the_package_lists_each_portal_sign_in_and_a_refused_one_records_nothing(
    api: Served, clock: FakeClock
) -> None:
    """The candidate's sign-ins to the portal (each session opened with their link) are data
    about them, and were recorded nowhere: the package listed every read and disclosure but
    not when they signed in. Each is now recorded on the link's principal and listed, when
    and until when, never a session id, a token or its hash; a session refused (a staff
    token, a revoked link) records nothing."""
    candidate = register(api.app)
    first = sign_in(api, candidate)
    assert first.status_code == 200, first.text
    token = api.tokens[f"candidate:{candidate}"]
    opened = api.app.clock()
    clock.advance(hours=2)
    again = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )  # the same browser: its first session is replaced
    assert again.status_code == 200, again.text
    cookies = [r.headers["set-cookie"].split(";")[0].partition("=")[2] for r in (first, again)]

    got = api.client.post(f"/v1/candidates/{candidate}/access-package", headers=PORTAL)

    assert got.status_code == 200, got.text
    signed_in = got.json()["portal_links"]["signed_in"]
    assert [
        (datetime.fromisoformat(s["at"]), datetime.fromisoformat(s["until"])) for s in signed_in
    ] == [
        (opened, opened + timedelta(hours=8)),
        (opened + timedelta(hours=2), opened + timedelta(hours=10)),
    ]
    assert {s["authenticated"] for s in signed_in} == {"portal-link"}
    for secret in (token, token_hash(token), *cookies):
        assert secret not in got.text

    head = api.head()
    problem(api.client.post("/portal/session", headers=api.as_(RECRUITER, **PORTAL)), 403)
    assert api.head() == head
    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="phone lost", actor=RECRUITER)
    )
    head = api.head()
    revoked = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    problem(revoked, 401, "unauthenticated")
    assert api.head() == head


def test_the_package_lists_each_portal_sign_out_and_one_without_a_session_records_nothing(
    api: Served, clock: FakeClock
) -> None:
    """Signing out (`DELETE /portal/session`) ended the session and was recorded nowhere: the
    package listed each sign-in but never when the candidate signed out. A sign-out of a
    session that lasts is now recorded on the link's principal before the session is ended,
    and listed beside the sign-ins: when, and when the session was opened, never a session
    id, a token or its hash. Signing out with no such session (no cookie, one signed out
    already, one whose link was revoked since) records nothing, and still answers 204."""
    candidate = register(api.app)
    first = sign_in(api, candidate)
    assert first.status_code == 200, first.text
    token = api.tokens[f"candidate:{candidate}"]
    opened = api.app.clock()
    copied = first.headers["set-cookie"].split(";")[0].partition("=")[2]
    clock.advance(minutes=10)  # within the session's 30 minutes unused

    out = api.client.delete("/portal/session", headers=PORTAL)

    assert out.status_code == 204, out.text
    assert PORTAL_COOKIE not in api.client.cookies
    head = api.head()
    assert api.client.delete("/portal/session", headers=PORTAL).status_code == 204
    api.client.cookies.set(PORTAL_COOKIE, copied)  # a copy taken before signing out
    assert api.client.delete("/portal/session", headers=PORTAL).status_code == 204
    assert api.head() == head
    api.client.cookies.clear()

    clock.advance(hours=1)
    again = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    assert again.status_code == 200, again.text
    got = api.client.post(f"/v1/candidates/{candidate}/access-package", headers=PORTAL)

    assert got.status_code == 200, got.text
    links = got.json()["portal_links"]
    assert [datetime.fromisoformat(s["at"]) for s in links["signed_in"]] == [
        opened,
        opened + timedelta(minutes=70),
    ]
    assert [
        (datetime.fromisoformat(s["at"]), datetime.fromisoformat(s["session_opened_at"]))
        for s in links["signed_out"]
    ] == [(opened + timedelta(minutes=10), opened)]
    assert {s["authenticated"] for s in links["signed_out"]} == {"portal-link"}
    second = again.headers["set-cookie"].split(";")[0].partition("=")[2]
    for secret in (token, token_hash(token), copied, second):
        assert secret not in got.text

    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="phone lost", actor=RECRUITER)
    )
    head = api.head()
    assert api.client.delete("/portal/session", headers=PORTAL).status_code == 204
    assert api.head() == head  # the session ended with its link: no sign-out to record
    package = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")
    assert package.status_code == 200, package.text
    assert len(package.json()["portal_links"]["signed_out"]) == 1


def cookie_of(answer: Any) -> str:
    return str(answer.headers["set-cookie"].split(";")[0].partition("=")[2])


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def test_the_package_lists_each_portal_session_that_ended_unused_at_its_end_or_replaced(
    api: Served, clock: FakeClock
) -> None:
    """A session that ended otherwise than by signing out left no record: the package listed
    its sign-in and nothing after. Now each is recorded on the link's principal once found
    ended (decision 0056), with when it ended by the session's rules and why, and listed in
    `portal_links.sessions_ended` beside when it was found: unused for 30 minutes (found at
    the next call made with its cookie), replaced by a new sign-in in its browser (found
    then), at its end, 8 hours after it opened (found when anyone next signed in). Each
    once; never a session id, a token or its hash."""
    candidate = register(api.app)
    token = api.portal(candidate)
    link = {"Authorization": f"Bearer {token}", **PORTAL}
    t0 = api.app.clock()

    unused = api.client.post("/portal/session", headers=link)  # at t0
    assert unused.status_code == 200, unused.text
    clock.advance(minutes=5)
    assert api.client.get("/v1/me", headers=PORTAL).status_code == 200  # its last call
    clock.advance(minutes=40)
    problem(api.client.get("/v1/me", headers=PORTAL), 401, "unauthenticated")  # found so
    replaced = api.client.post("/portal/session", headers=link)  # at t0 + 45 min
    assert replaced.status_code == 200, replaced.text
    clock.advance(minutes=10)
    longest = api.client.post("/portal/session", headers=link)  # the same browser
    assert longest.status_code == 200, longest.text
    for _ in range(23):  # in use to the end of its 8 hours, a call each 20 minutes
        clock.advance(minutes=20)
        assert api.client.get("/v1/me", headers=PORTAL).status_code == 200
    clock.advance(minutes=80)
    api.client.cookies.clear()
    other = register(api.app, "Wang Fang")
    assert sign_in(api, other).status_code == 200  # another browser: the ended are found
    assert sign_in(api, other).status_code == 200  # and taken once

    package = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")

    assert package.status_code == 200, package.text
    links = package.json()["portal_links"]
    assert [at(s["at"]) for s in links["signed_in"]] == [
        t0,
        t0 + timedelta(minutes=45),
        t0 + timedelta(minutes=55),
    ]
    assert links["signed_out"] == []
    assert [
        (
            at(s["session_opened_at"]),
            at(s["ended_at"]),
            s["reason"],
            at(s["recorded_at"]),
        )
        for s in links["sessions_ended"]
    ] == [
        (t0, t0 + timedelta(minutes=35), "idle", t0 + timedelta(minutes=45)),
        (
            t0 + timedelta(minutes=45),
            t0 + timedelta(minutes=55),
            "replaced",
            t0 + timedelta(minutes=55),
        ),
        (
            t0 + timedelta(minutes=55),
            t0 + timedelta(minutes=55, hours=8),
            "expired",
            t0 + timedelta(minutes=55, hours=9),
        ),
    ]
    for secret in (token, token_hash(token), *map(cookie_of, (unused, replaced, longest))):
        assert secret not in package.text


def test_a_session_that_ended_with_its_link_records_no_end_of_its_own(
    api: Served, clock: FakeClock
) -> None:
    """A session whose link stopped signing in first (issued again, revoked) ended with its
    link, whose own event is in the package: nothing more is recorded for it when it is
    found (decision 0050). One that had ended unused before its link was issued again is
    recorded as it ended."""
    candidate = register(api.app)
    other = register(api.app, "Wang Fang")
    t0 = api.app.clock()
    assert sign_in(api, candidate).status_code == 200  # the first link, at t0
    api.client.cookies.clear()
    clock.advance(minutes=40)  # it ended unused at t0 + 30 min
    assert sign_in(api, candidate).status_code == 200  # a new link: the first one replaced
    api.client.cookies.clear()
    clock.advance(minutes=10)
    api.portal(candidate)  # issued again: the second session's link replaced at t0 + 50 min
    clock.advance(minutes=30)  # it would have ended unused at t0 + 70 min
    assert sign_in(api, other).status_code == 200  # finds it ended
    api.client.cookies.clear()
    head = api.head()
    assert sign_in(api, other).status_code == 200  # nothing left to find
    assert api.head() == head + 2  # the link issued again and its sign-in: nothing else

    package = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")

    assert package.status_code == 200, package.text
    links = package.json()["portal_links"]
    assert [e["event"] for e in links["events"]] == ["issued", "issued again", "issued again"]
    assert [(s["reason"], at(s["ended_at"])) for s in links["sessions_ended"]] == [
        ("idle", t0 + timedelta(minutes=30))
    ]


def test_a_sign_out_that_cannot_be_recorded_still_ends_the_session(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Signing out while another process holds the store's lock (a backup, a sqlite3 shell
    left open) cannot be recorded: it is answered with the store's problem, nothing is
    recorded, and the session is ended all the same (the browser told to drop its cookie, and
    a copy of it signing no one in after): access is never kept for the sake of its record.
    (On SQLite, whose sessions are kept beside the store, not in it.)"""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        with served(app, settings) as api:
            candidate = register(api.app)
            opened = sign_in(api, candidate)
            assert opened.status_code == 200, opened.text
            session = opened.headers["set-cookie"].split(";")[0].partition("=")[2]
            assert api.client.get("/v1/me", headers=PORTAL).status_code == 200  # signed in
            head = api.head()
            holder = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                out = api.client.delete("/portal/session", headers=PORTAL)
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            problem(out, 503, "store-busy")
            assert out.headers["retry-after"] == "5"
            assert PORTAL_COOKIE not in api.client.cookies  # told to drop it all the same
            assert api.head() == head
            after = api.client.get(
                "/v1/me", headers={**PORTAL, "Cookie": f"{PORTAL_COOKIE}={session}"}
            )
            assert "no portal session" in problem(after, 401, "unauthenticated")["detail"]
    finally:
        app.close()


def test_a_session_end_that_cannot_be_recorded_is_kept_and_recorded_when_next_found(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A session found ended while another process holds the store's lock: its end cannot
    be recorded. The call is answered as for any ended session (401: it signs no one in,
    recorded or not), one line says the end was not recorded, and the session is put back,
    ended, so the next call made with its cookie records it, as it ended. (On SQLite, whose
    sessions are kept beside the store.)"""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        with served(app, settings) as api:
            candidate = register(api.app)
            t0 = api.app.clock()
            session = cookie_of(sign_in(api, candidate))
            clock.advance(minutes=45)  # it ended unused at t0 + 30 min
            head = api.head()
            holder = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                with caplog.at_level(logging.ERROR, logger="infra.http.sessions"):
                    found = api.client.get("/v1/me", headers=PORTAL)
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            assert "no portal session" in problem(found, 401, "unauthenticated")["detail"]
            assert api.head() == head
            said = [r.getMessage() for r in caplog.records if r.name == "infra.http.sessions"]
            assert len(said) == 1, said
            assert said[0].startswith(
                "the ends of 1 portal session(s) found ended were not recorded ("
            ), said[0]
            assert said[0].endswith("; 1 put back to be recorded when next found"), said[0]
            clock.advance(minutes=5)
            again = api.client.get(
                "/v1/me", headers={**PORTAL, "Cookie": f"{PORTAL_COOKIE}={session}"}
            )
            problem(again, 401, "unauthenticated")
            assert api.head() == head + 1  # its end, recorded now
            package = api.post(COMPLIANCE, f"/v1/candidates/{candidate}/access-package")
    finally:
        app.close()

    assert package.status_code == 200, package.text
    assert [
        (at(s["ended_at"]), s["reason"], at(s["recorded_at"]))
        for s in package.json()["portal_links"]["sessions_ended"]
    ] == [(t0 + timedelta(minutes=30), "idle", t0 + timedelta(minutes=50))]


def test_a_sign_in_that_cannot_be_recorded_opens_no_session_and_is_answered_with_the_stores_problem(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Signing in while another process holds the store's lock cannot be recorded (decision
    0049: on the record, or no session): the store's problem is the answer, no session is
    opened and no cookie given; the server raises nothing past its answer (the test client
    re-raises what a route lets through, as the server would log it as a traceback)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        with served(app, settings) as api:
            candidate = register(api.app)
            token = api.portal(candidate)
            head = api.head()
            holder = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                out = api.client.post(
                    "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
                )
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            problem(out, 503, "store-busy")
            assert out.headers["retry-after"] == "5"
            assert "set-cookie" not in out.headers
            assert PORTAL_COOKIE not in api.client.cookies
            assert api.head() == head
            again = sign_in(api, candidate)  # the store back: the link signs in as before
            assert again.status_code == 200, again.text
    finally:
        app.close()


# --- the page -----------------------------------------------------------------------------


def test_the_pages_are_served_with_a_strict_policy_and_load_nothing_from_elsewhere(
    api: Served,
) -> None:
    page = api.client.get("/portal")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    linked = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "/portal/static/portal.js" in linked
    assert "/portal/static/portal.css" in linked
    assert all(url.startswith(("/portal/", "#")) for url in linked), linked
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    assert not re.search(r"\son[a-z]+=", html)  # no inline handler
    assert "style=" not in html
    for path in ("/portal", "/portal/static/portal.js", "/portal/static/portal.css"):
        served_file = api.client.get(path)
        assert served_file.status_code == 200, path
        policy = served_file.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert served_file.headers["x-content-type-options"] == "nosniff"
        assert served_file.headers["referrer-policy"] == "no-referrer"
        assert "://" not in served_file.text, path
    assert 'data-testid="consent-withdraw"' in html
    assert api.client.get("/portal/static/../app.py").status_code == 404
    assert api.client.get("/portal/static/dashboard.js").status_code == 404


def test_commands_on_another_candidates_records_are_refused_alike_whatever_their_state(
    api: Served,
) -> None:
    """A candidate who puts someone else's consent, investigation or report id in a command
    learns nothing of it: the same 403 whether it is asked, active or withdrawn, and no rule's
    answer about it (not active, wider than asked, no such check) ever reaches them."""
    asked = register(api.app, "Han Meimei")
    asked_consent = request_consent(api.app, asked)
    other = shared_report(api.app, "Wang Fang")
    api.app.withdraw_consent(
        WithdrawConsent(
            consent_id=other.consent_id, reason="no", actor=f"candidate:{other.candidate_id}"
        )
    )
    me = register(api.app)
    assert sign_in(api, me).status_code == 200
    head = api.head()
    start = api.app.clock()
    wider = terms_in(check_types=["employment", "education", "criminal_record"])
    grant = {
        "terms": wider.model_dump(mode="json"),
        "document_sha256": DOCUMENT_SHA256,
        "signature_method": "clickwrap",
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=90)).isoformat(),
    }
    dispute = {"check_id": str(UUID(int=9)), "statement": "not mine"}
    for path, body in [
        (f"/v1/consents/{asked_consent}/grant", grant),
        (f"/v1/consents/{asked_consent}/withdrawal", {"reason": "x"}),
        (f"/v1/consents/{other.consent_id}/withdrawal", {"reason": "x"}),
        (f"/v1/consents/{other.consent_id}/grant", grant),
        (f"/v1/investigations/{other.investigation_id}/feedback", {"text": "hello"}),
        (f"/v1/investigations/{other.investigation_id}/disputes", dispute),
        (f"/v1/reports/{other.report_id}/disputes", dispute),
    ]:
        refused = problem(
            api.client.post(path, json=body, headers=PORTAL), 403, "outside-assignments"
        )
        assert str(other.candidate_id) not in refused["detail"], path
        assert str(asked) not in refused["detail"], path
    assert api.head() == head


def test_reading_another_candidates_investigation_or_report_does_not_say_whose_it_is(
    api: Served,
) -> None:
    """An investigation's or a report's id says nothing of whom it is about: the refusal a
    candidate gets for someone else's names neither that person nor their id (the refusal is
    recorded under that person, for them and compliance to see)."""
    other = shared_report(api.app, "Wang Fang")
    me = register(api.app)
    assert sign_in(api, me).status_code == 200
    for path in [f"/v1/investigations/{other.investigation_id}", f"/v1/reports/{other.report_id}"]:
        refused = problem(api.client.get(path, params={"purpose": MY_PURPOSE}, headers=PORTAL), 403)
        assert str(other.candidate_id) not in refused["detail"], refused
        assert "principal-assignments" in refused["detail"]
    refusals = [e for e in access_log(api, other.candidate_id) if e["outcome"] == "refused"]
    assert [e["principal"] for e in refusals] == [f"candidate:{me}"] * 2


def test_a_link_that_no_longer_opens_the_portal_tells_the_candidate_why_and_what_to_do(
    api: Served, clock: FakeClock
) -> None:
    """The page shows the candidate the problem's detail as it is: a link replaced by a newer
    one, revoked or expired says so in words a candidate can act on, not `unknown token`."""
    candidate = register(api.app)
    first = api.portal(candidate)
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {first}", **PORTAL}
    )
    assert opened.status_code == 200
    api.portal(candidate)  # issued again: the first link is replaced, its session ended
    ended = problem(api.client.get("/v1/me", headers=PORTAL), 401, "unauthenticated")
    assert "replaced by a newer one" in ended["detail"], ended
    replaced = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {first}", **PORTAL}
    )
    detail = problem(replaced, 401, "unauthenticated")["detail"]
    assert "replaced by a newer one" in detail, detail
    assert "latest link" in detail, detail
    assert "token" not in detail, detail

    other = register(api.app, "Han Meimei")
    token = api.portal(other)
    clock.advance(days=31)
    expired = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    detail = problem(expired, 401, "unauthenticated")["detail"]
    assert "link has expired" in detail, detail
    assert "ask the recruiter" in detail, detail
    assert "token" not in detail, detail


def test_a_body_that_is_not_a_json_object_is_told_so_without_naming_our_classes(
    api: Served,
) -> None:
    """A list (or a string) where the command's object belongs: 422 naming the body and the
    rule, not the server's class for it (`GiveFeedbackBody`)."""
    story = shared_report(api.app)
    assert sign_in(api, story.candidate_id).status_code == 200
    for body in ([1, 2], "hello", 7):
        refused = problem(
            api.client.post(
                f"/v1/investigations/{story.investigation_id}/feedback", json=body, headers=PORTAL
            ),
            422,
            "validation",
        )
        assert refused["errors"] == [
            {"field": "(body)", "rule": "model_type", "message": "must be a JSON object"}
        ], refused
        assert "Body" not in refused["detail"], refused
