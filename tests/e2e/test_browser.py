"""The dashboard and the portal in a real browser (Debian's chromium, headless, driven by
Playwright) against a real `backcheck serve --demo`: a compliance officer signs in, the numbers
on the page are the projection's, a chart moves when an event is committed, a refused-read bar
drills down to the reads behind it; the demo candidate opens their link and withdraws their
consent, and signing out ends the session for a copy of its cookie too. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.config import Settings
from infra.views.kept import DASHBOARD
from tests.e2e.test_serve import Server
from tests.integration.test_command_applied_views_behind import REFUSAL, refusing_rows

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 15_000


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium under CI")
    pytest.skip("Debian's chromium is not installed (`apt-get install chromium`)")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`backcheck serve --demo` on a store of its own (its data directory: the log's)."""
    require_chromium()
    data = tmp_path_factory.mktemp("browser")
    settings = Settings(database_url=f"sqlite:///{data / 'store.sqlite'}", data_dir=data)
    server = Server(settings, "--demo", log=data / "serve.log")
    try:
        yield server
    finally:
        assert server.stop() == 0
        assert "Traceback" not in server.log.read_text()


@pytest.fixture(scope="module")
def demo(served: Server) -> tuple[str, dict[str, str], str]:
    """A served demo store: its base URL, the tokens it printed, the portal link."""
    tokens = served.tokens()  # once the whole banner is printed
    links = dict(re.findall(r"portal link of (\S+): (http\S+)", served.out.read_text()))
    assert len(links) == 1, served.out.read_text()
    return served.base, tokens, next(iter(links.values()))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def value(page: Any, testid: str) -> str:
    return str(page.get_by_test_id(testid).text_content()).strip()


def test_the_dashboard_shows_the_projection_live_and_drills_down(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    base, tokens, _ = demo
    compliance = {"Authorization": f"Bearer {tokens['compliance:demo']}"}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/dashboard")
    page.get_by_test_id("token-input").fill(tokens["compliance:demo"])
    page.get_by_test_id("sign-in").click()
    page.wait_for_selector('[data-testid=status][data-state="live"]', timeout=WAIT_MS)
    assert value(page, "who") == "compliance:demo (compliance)"

    # the numbers shown are the projection's
    with httpx.Client(base_url=base, timeout=30) as client:
        summary = client.get("/v1/dashboard/summary", headers=compliance).json()
    candidates = summary["pipeline"]["candidates"]
    for status, n in candidates.items():
        slug = re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")
        bar = page.get_by_test_id(f"bar-candidates-{slug}")
        assert bar.get_attribute("data-value") == str(n), status
    assert value(page, "stat-refusals") == str(summary["refusals"]["total"])
    shot(page, "dashboard")

    # a new event moves the chart while the page is open
    registered = int(candidates.get("registered", 0))
    head = int(value(page, "stat-head"))
    with httpx.Client(base_url=base, timeout=30) as client:
        made = client.post(
            "/v1/candidates",
            json={"name": "Zhou Xun", "email": "zx@example.com"},
            headers={"Authorization": f"Bearer {tokens['hr:demo']}"},
        )
    assert made.status_code == 201, made.text
    page.wait_for_function(
        "([h]) => Number(document.querySelector('[data-testid=stat-head]').textContent) > h",
        arg=[head],
        timeout=WAIT_MS,
    )
    bar = page.get_by_test_id("bar-candidates-registered")
    page.wait_for_function(
        "([n]) => Number(document.querySelector("
        "'[data-testid=bar-candidates-registered]').dataset.value) === n",
        arg=[registered + 1],
        timeout=WAIT_MS,
    )
    assert bar.get_attribute("data-value") == str(registered + 1)
    shot(page, "dashboard-after-an-event")

    # a day's refused reads, drilled down to the reads behind the bar
    refused_days = [
        b
        for b in page.locator("[data-testid^=bar-refusals-daily-]").all()
        if b.get_attribute("data-value") not in (None, "0")
    ]
    assert refused_days, "the demo's refused reads show as a bar"
    expected = int(refused_days[-1].get_attribute("data-value") or 0)
    refused_days[-1].click()
    page.wait_for_selector("[data-testid=refusal-row]", timeout=WAIT_MS)
    assert page.get_by_test_id("refusal-row").count() == expected
    shot(page, "dashboard-drill-down")
    assert not errors, errors


def test_the_dashboard_says_the_servers_fault_and_goes_live_again_once_it_is_gone(
    browser: Any, tmp_path: Path
) -> None:
    """A summary that can no longer be made ends the stream with a `problem` event (decision
    0062): the page says the problem, tries again, and is live again once the fault is gone."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    server = Server(settings, "--demo", log=tmp_path / "serve.log")
    try:
        tokens = server.tokens()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.base}/dashboard")
        page.get_by_test_id("token-input").fill(tokens["compliance:demo"])
        page.get_by_test_id("sign-in").click()
        page.wait_for_selector('[data-testid=status][data-state="live"]', timeout=WAIT_MS)

        with refusing_rows(settings, DASHBOARD), httpx.Client(base_url=server.base) as client:
            made = client.post(  # an event the dashboard's views must apply, and cannot
                "/v1/candidates",
                json={"name": "Zhou Xun"},
                headers={"Authorization": f"Bearer {tokens['hr:demo']}"},
                timeout=30,
            )
            assert made.status_code == 201, made.text
            page.wait_for_selector('[data-testid=status][data-state="fault"]', timeout=WAIT_MS)
            said = value(page, "status")
            assert "Views failed" in said, said
            assert REFUSAL in said, said
            assert "trying again in" in said, said
            shot(page, "dashboard-fault")

        page.wait_for_selector('[data-testid=status][data-state="live"]', timeout=60_000)
        assert not errors, errors
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "views-failed" in log  # the server's own line


ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\.\d{3,6}|\+00:00|Z\b")


def assert_read_by_a_person(text: str) -> None:
    """A moment shown as a person reads it: no ISO text, no microseconds, no offset."""
    assert not ISO_MOMENT.search(text), text


def test_the_portal_shows_moments_as_a_person_reads_them_the_exact_one_in_their_title(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """The consents' windows, the access log and the session's end were shown as the API's
    ISO text (`2026-12-05T09:14:03.123456+00:00`); each is a date and time now."""
    _, _, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    shown = [
        *page.get_by_test_id("consent-validity").all_text_contents(),
        *page.locator("[data-testid=access-entry] td:first-child").all_text_contents(),
        value(page, "portal-expires"),
    ]
    assert len(shown) >= 3
    for text in shown:
        assert_read_by_a_person(text)
    exact = page.locator("[data-testid=consent-validity] time").first.get_attribute("title")
    assert exact is not None
    assert ISO_MOMENT.search(exact), "the exact moment, on hovering"


def test_the_candidate_withdraws_consent_from_the_portal_once_with_a_double_click(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """A double click (an impatient candidate) sends one withdrawal: no second one is sent
    and refused, so the page shows the withdrawal and no error."""
    _, _, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    assert page.url.endswith("/portal"), "the token left the address bar"
    assert value(page, "portal-principal").startswith("candidate:")
    active = page.locator('[data-testid=consent][data-status="active"]')
    assert active.count() >= 1, "the demo candidate has a consent in force"
    consent_id = active.first.get_attribute("data-consent-id")
    shot(page, "portal")
    active.first.get_by_test_id("consent-withdraw").dblclick()
    page.wait_for_selector(
        f'[data-testid=consent][data-consent-id="{consent_id}"][data-status="withdrawn"]',
        timeout=WAIT_MS,
    )
    # the page says so once it has loaded everything again (the consent list redraws first)
    page.wait_for_function(
        "() => /withdrawn/i.test("
        "document.querySelector('[data-testid=portal-message]').textContent)",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(500)  # a second withdrawal, had one been sent, has been answered
    assert page.get_by_test_id("portal-error").is_hidden(), value(page, "portal-error")
    assert page.get_by_test_id("access-entry").count() >= 1
    shot(page, "portal-after-withdrawal")
    assert not errors, errors


def test_signing_out_in_the_portal_ends_the_session_for_a_copy_of_its_cookie(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    base, _, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "backcheck_portal"]
    assert cookie["httpOnly"]
    copied = {"Cookie": f"backcheck_portal={cookie['value']}", "X-Backcheck-Portal": "1"}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/v1/me", headers=copied).status_code == 200

        page.get_by_test_id("logout").click()
        page.wait_for_selector("[data-testid=portal-signed-out]:not([hidden])", timeout=WAIT_MS)

        assert client.get("/v1/me", headers=copied).status_code == 401
    assert not [c for c in page.context.cookies() if c["name"] == "backcheck_portal"]
    assert not errors, errors


def test_the_portal_shows_a_cancelled_investigation_and_the_checks_it_planned(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """The demo's first investigation, cancelled, planned a criminal record check: the
    candidate sees it (read-only: it takes no feedback or dispute), as their data package
    does, instead of it being left off the page."""
    _, _, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    cancelled = page.locator("[data-testid=investigation]").filter(
        has=page.locator('[data-testid=investigation-status]:text-is("cancelled")')
    )
    assert cancelled.count() == 1
    assert "criminal_record" in str(cancelled.get_by_test_id("investigation-checks").text_content())
    assert cancelled.get_by_test_id("feedback-form").is_hidden()
    assert cancelled.get_by_test_id("dispute-form").is_hidden()
    assert not errors, errors


def test_who_sees_what_names_a_role_in_general_as_any_of_it_never_anyone(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """Reviewers and compliance officers in general (no one named) are "any reviewer", "any
    compliance officer": "anyone" would tell the candidate everybody may read their data."""
    _, _, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    general = page.locator('[data-testid=reader][data-principal=""]')
    headings = sorted(
        str(general.nth(i).locator("h3").text_content()) for i in range(general.count())
    )
    assert headings == ["any compliance officer", "any reviewer"], headings
    named = page.locator('[data-testid=reader][data-role="hiring_manager"] h3').first
    assert str(named.text_content()).endswith("(hiring manager)")


def asked_of_a_new_candidate(
    served: Server, base: str, tokens: dict[str, str], name: str, terms: dict[str, Any]
) -> tuple[str, str, str]:
    """A candidate the recruiter registers and asks consent of: their id, the consent's id,
    and the portal link token the request sent them."""
    staff = {"Authorization": f"Bearer {tokens['hr:demo']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        made = client.post(
            "/v1/candidates", json={"name": name, "email": "han@example.cn"}, headers=staff
        )
        assert made.is_success, made.text
        candidate = made.json()["candidate_id"]
        asked = client.post(
            f"/v1/candidates/{candidate}/consents", json={"terms": terms}, headers=staff
        )
        assert asked.is_success, asked.text
    sent = served.log.parent / "outbox" / "portal-links" / f"{candidate}.json"
    _, _, token = json.loads(sent.read_text())["url"].partition("#token=")
    return candidate, asked.json()["consent_id"], token


def test_the_candidate_grants_what_the_page_shows_and_its_hash_is_recorded(
    served: Server, demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """The page shows the SHA-256 of the terms the candidate ticks; the grant it sends is
    taken (the server checks that hash against the same document: non-ASCII and quotes
    included), and the consent records the hash the candidate was shown."""
    base, tokens, _ = demo
    terms = {
        "purposes": ["pre-employment screening"],
        "check_types": ["employment", "education"],
        "categories": [],
        "referee_roles": ["hr", "peer"],
        "excluded_organisations": ['Beijing "Current" Employer Ltd.'],
        "recording_allowed": True,
        "third_parties": ["北京背调服务有限公司"],
    }
    candidate, consent_id, token = asked_of_a_new_candidate(
        served, base, tokens, "Li Xiaoming", terms
    )
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/portal#token={token}")
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    card = page.locator(f'[data-testid=consent][data-consent-id="{consent_id}"]')
    card.locator('input[data-term="check_types"][value="education"]').uncheck()
    card.locator('input[data-term="referee_roles"][value="peer"]').uncheck()
    page.wait_for_function(
        "() => /^[0-9a-f]{64}$/.test(document.querySelector("
        "'[data-testid=grant-document-sha256]').textContent)",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(300)  # the hash of the last change
    shown = value(card, "grant-document-sha256")
    card.get_by_test_id("grant-agree").check()
    card.get_by_test_id("consent-grant").click()
    page.wait_for_selector(
        f'[data-testid=consent][data-consent-id="{consent_id}"][data-status="active"]',
        timeout=WAIT_MS,
    )
    assert page.get_by_test_id("portal-error").is_hidden(), value(page, "portal-error")
    compliance = {"Authorization": f"Bearer {tokens['compliance:demo']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        register = client.get(
            f"/v1/candidates/{candidate}/consents", params={"purpose": "audit"}, headers=compliance
        )
    assert register.status_code == 200, register.text
    (granted,) = register.json()["consents"]
    assert granted["document_sha256"] == shown
    assert granted["terms"]["check_types"] == ["employment"]
    assert not errors, errors


def test_a_candidate_declines_a_consent_request_from_the_portal(
    served: Server, demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """A request is declined by withdrawing it (the rules allow it); the page offers it beside
    the grant, so a candidate who does not agree is not left with only "Grant"."""
    base, tokens, _ = demo
    terms = {
        "purposes": ["pre-employment screening"],
        "check_types": ["education"],
        "categories": [],
        "referee_roles": [],
        "excluded_organisations": [],
        "recording_allowed": False,
        "third_parties": [],
    }
    _, consent_id, token = asked_of_a_new_candidate(served, base, tokens, "Han Meimei", terms)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/portal#token={token}")
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    card = page.locator(f'[data-testid=consent][data-consent-id="{consent_id}"]')
    assert card.get_attribute("data-status") == "requested"
    decline = card.get_by_test_id("consent-withdraw")
    assert "decline" in str(decline.text_content()).lower()
    decline.click()
    page.wait_for_selector(
        f'[data-testid=consent][data-consent-id="{consent_id}"][data-status="withdrawn"]',
        timeout=WAIT_MS,
    )
    page.wait_for_function(
        "() => /declined/i.test("
        "document.querySelector('[data-testid=portal-message]').textContent)",
        timeout=WAIT_MS,
    )
    assert page.get_by_test_id("portal-error").is_hidden(), value(page, "portal-error")
    assert not errors, errors


def test_the_candidate_asks_for_erasure_from_the_portal(
    demo: tuple[str, dict[str, str], str], browser: Any
) -> None:
    """Run last: it ends with the demo candidate's erasure request. The portal has the erasure
    request the API lets a candidate make, and the request is theirs in the timeline."""
    base, tokens, link = demo
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    candidate = value(page, "portal-principal").removeprefix("candidate:")
    page.locator('nav a[href="#erasure"]').click()  # the page's menu leads to it
    page.get_by_test_id("erasure-reason").fill("I took another offer 🙂")
    page.get_by_test_id("erasure-submit").click()
    page.wait_for_function(
        "() => /erasure request was recorded/i.test("
        "document.querySelector('[data-testid=portal-message]').textContent)",
        timeout=WAIT_MS,
    )
    assert page.get_by_test_id("portal-error").is_hidden(), value(page, "portal-error")
    status = page.get_by_test_id("erasure-status")
    assert status.get_attribute("data-state") == "pending"
    assert "pending" in value(page, "erasure-status")
    assert page.get_by_test_id("erasure-form").is_hidden(), "not offered twice"
    assert_read_by_a_person(value(page, "erasure-status"))
    page.reload()  # opened again later (the session's cookie): still pending, and since when
    page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
    assert page.get_by_test_id("erasure-status").get_attribute("data-state") == "pending"
    asked_at = page.locator("[data-testid=erasure-status] time").get_attribute("datetime")
    compliance = {"Authorization": f"Bearer {tokens['compliance:demo']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        timeline = client.get(
            f"/v1/candidates/{candidate}/timeline", params={"purpose": "audit"}, headers=compliance
        )
    assert timeline.status_code == 200, timeline.text
    entries = timeline.json()["entries"]
    (asked,) = [e for e in entries if e["event"] == "Candidate.ErasureRequested"]
    assert asked["who"] == f"candidate:{candidate}"
    assert asked_at == asked["time"]
    shot(page, "portal-after-erasure-request")
    assert not errors, errors
