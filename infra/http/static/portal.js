// The candidate portal: opened from the link `/portal#token=…`, it exchanges the token for
// a session the server keeps (an HttpOnly cookie holding its id, never the token), takes the
// token out of the address bar, and from then on calls the API like any client. Every call sends `X-Backcheck-Portal: 1` (the server refuses a
// cookie call without it). Text from the server is only ever set as text, never as HTML.
"use strict";

(() => {
  const HEADERS = { "X-Backcheck-Portal": "1" };
  const PURPOSE = "my own data (portal)";
  const EXPIRES = "backcheck-portal-expires";
  const IDLE = "backcheck-portal-idle";
  let candidate = null;

  const byId = (root, id) => root.querySelector(`[data-testid="${id}"]`);
  const page = (id) => byId(document, id);

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function row(cells, attrs) {
    const tr = el("tr", undefined, attrs);
    for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
    return tr;
  }

  // A moment as a person reads it, in their own time zone: "5 Dec 2026, 14:03", never the
  // ISO text with its microseconds; the exact moment stays in the element's title.
  const DATES = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function when(iso) {
    if (!iso) return "—";
    const moment = new Date(iso);
    return Number.isNaN(moment.getTime()) ? String(iso) : DATES.format(moment);
  }

  function timeEl(iso, attrs) {
    return el("time", when(iso), { datetime: iso || "", title: iso || "", ...(attrs || {}) });
  }

  function cellOf(node) {
    const td = el("td");
    td.append(node);
    return td;
  }

  function show(message) {
    page("portal-message").textContent = message || "";
  }

  function fail(error) {
    const box = page("portal-error");
    box.textContent = error.message || String(error);
    box.hidden = false;
  }

  function clearError() {
    page("portal-error").hidden = true;
  }

  class Problem extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function call(method, path, body, extra) {
    const init = { method, headers: { ...HEADERS, ...(extra || {}) }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch (_) {
        // not a problem document: keep the status line
      }
      throw new Problem(response.status, detail);
    }
    return response;
  }

  const read = async (path) => (await call("GET", `${path}?purpose=${encodeURIComponent(PURPOSE)}`)).json();

  // --- session --------------------------------------------------------------------------

  function takeToken() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const query = new URLSearchParams(window.location.search);
    const token = fragment.get("token") || query.get("token");
    if (fragment.has("token") || query.has("token")) {
      window.history.replaceState(null, "", "/portal"); // the token leaves the address bar
    }
    return token;
  }

  async function signIn(token) {
    const response = await call("POST", "/portal/session", undefined, {
      Authorization: `Bearer ${token}`,
    });
    const session = await response.json();
    sessionStorage.setItem(EXPIRES, session.expires_at || "");
    sessionStorage.setItem(IDLE, `${Math.round(session.idle_seconds / 60)} minutes`);
  }

  async function signOut() {
    try {
      await call("DELETE", "/portal/session");
    } finally {
      sessionStorage.removeItem(EXPIRES);
      sessionStorage.removeItem(IDLE);
      page("portal").hidden = true;
      page("session").hidden = true;
      page("portal-signed-out").hidden = false;
      show("You are signed out.");
    }
  }

  // --- consents -------------------------------------------------------------------------

  const TERM_NAMES = {
    purposes: "purposes",
    check_types: "checks",
    categories: "data categories",
    referee_roles: "who may be asked",
    excluded_organisations: "never contacted",
    third_parties: "shared with",
  };
  const NARROWABLE = ["purposes", "check_types", "categories", "referee_roles", "third_parties"];

  function termsList(dl, terms) {
    for (const [key, label] of Object.entries(TERM_NAMES)) {
      dl.append(el("dt", label), el("dd", (terms[key] || []).join(", ") || "—"));
    }
    dl.append(el("dt", "recording calls"), el("dd", terms.recording_allowed ? "allowed" : "not allowed"));
  }

  function chosenTerms(form, asked) {
    const terms = { excluded_organisations: asked.excluded_organisations || [] };
    for (const key of NARROWABLE) {
      terms[key] = [...form.querySelectorAll(`input[data-term="${key}"]:checked`)].map((i) => i.value);
    }
    const recording = form.querySelector('input[data-term="recording_allowed"]');
    terms.recording_allowed = Boolean(recording && recording.checked);
    return terms;
  }

  async function sha256(text) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The server builds the same text to check the hash (services/consents.py portal_document):
  // the keys, their order and JSON.stringify's form are part of the document.
  function documentText(consentId, terms) {
    return JSON.stringify({ consent_id: consentId, terms, signature_method: "clickwrap" });
  }

  function grantForm(card, consent) {
    const form = byId(card, "grant-form");
    const choices = byId(form, "grant-choices");
    const asked = consent.terms;
    for (const key of NARROWABLE) {
      if (!(asked[key] || []).length) continue;
      const set = el("fieldset", undefined, { "data-testid": `grant-${key}` });
      set.append(el("legend", TERM_NAMES[key]));
      for (const value of asked[key]) {
        const label = el("label");
        const box = el("input", undefined, { type: "checkbox", "data-term": key, value });
        box.checked = true;
        label.append(box, ` ${value}`);
        set.append(label);
      }
      choices.append(set);
    }
    if (asked.recording_allowed) {
      const label = el("label");
      const box = el("input", undefined, { type: "checkbox", "data-term": "recording_allowed" });
      box.checked = true;
      label.append(box, " calls may be recorded");
      choices.append(label);
    }
    const hash = byId(form, "grant-document-sha256");
    const rehash = async () => {
      hash.textContent = await sha256(documentText(consent.consent_id, chosenTerms(form, asked)));
    };
    form.addEventListener("change", rehash);
    rehash().catch(fail);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const terms = chosenTerms(form, asked);
      const days = Number(byId(form, "grant-valid-days").value);
      const from = new Date();
      const until = new Date(from.getTime() + days * 86400000);
      act(async () => {
        await call("POST", `/v1/consents/${consent.consent_id}/grant`, {
          terms,
          document_sha256: await sha256(documentText(consent.consent_id, terms)),
          signature_method: "clickwrap",
          valid_from: from.toISOString(),
          valid_until: until.toISOString(),
        });
        return "Consent granted.";
      });
    });
    form.hidden = false;
  }

  // A request not yet granted is declined by withdrawing it: the same command, other words.
  function withdrawForm(card, consent, declining) {
    const form = byId(card, "withdraw-form");
    if (declining) {
      byId(form, "withdraw-label").textContent = "Why you decline (recorded)";
      byId(form, "withdraw-reason").value = "I do not consent";
      byId(form, "consent-withdraw").textContent = "Decline this request";
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = byId(form, "withdraw-reason").value;
      act(async () => {
        await call("POST", `/v1/consents/${consent.consent_id}/withdrawal`, { reason });
        return declining ? "Consent request declined." : "Consent withdrawn.";
      });
    });
    form.hidden = false;
  }

  async function loadConsents() {
    const register = await read(`/v1/candidates/${candidate}/consents`);
    const list = page("consent-list");
    list.replaceChildren();
    if (!register.consents.length) list.append(el("p", "No consent has been asked of you."));
    for (const consent of register.consents) {
      const card = document.getElementById("consent-template").content.firstElementChild.cloneNode(true);
      card.dataset.consentId = consent.consent_id;
      card.dataset.status = consent.status;
      byId(card, "consent-id").textContent = consent.consent_id;
      byId(card, "consent-status").textContent = consent.status;
      termsList(byId(card, "consent-terms"), consent.terms);
      const validity = byId(card, "consent-validity");
      validity.replaceChildren(
        ...(consent.valid_until
          ? ["valid from ", timeEl(consent.valid_from), " until ", timeEl(consent.valid_until)]
          : [`asked by ${consent.requested_by} on `, timeEl(consent.requested_at)]),
      );
      if (consent.status === "requested") {
        grantForm(card, consent);
        withdrawForm(card, consent, true);
      }
      if (consent.status === "active" || consent.status === "not yet valid") withdrawForm(card, consent, false);
      list.append(card);
    }
  }

  // --- your data, who sees it, who accessed it ------------------------------------------

  async function loadProfile() {
    const profile = await read(`/v1/candidates/${candidate}/profile`);
    const body = page("profile-fields");
    body.replaceChildren();
    for (const f of profile.fields) {
      body.append(
        row([f.name, f.category, f.tier, f.value === null ? "(not shown)" : f.value], {
          "data-testid": "profile-field",
          "data-name": f.name,
          "data-category": f.category,
        }),
      );
    }
    await showErasure(profile);
  }

  // What became of the candidate's erasure request: pending (the form is not offered again)
  // or done, each with when, from their own timeline (read only once there is a request).
  async function showErasure(profile) {
    const status = page("erasure-status");
    const form = page("erasure-form");
    if (!profile.erasure_requested && !profile.erased) {
      status.hidden = true;
      form.hidden = false;
      return;
    }
    const entries = (await read(`/v1/candidates/${candidate}/timeline`)).entries;
    const last = (event) => entries.filter((e) => e.event === event).pop();
    const asked = last("Candidate.ErasureRequested");
    const erased = last("Candidate.Erased");
    const parts = [];
    if (asked) parts.push("Erasure of your data was asked for on ", timeEl(asked.time), ". ");
    if (profile.erased) {
      status.dataset.state = "done";
      parts.push("Your personal data was erased");
      if (erased) parts.push(" on ", timeEl(erased.time));
      parts.push("; the record of what happened remains, without your data.");
    } else {
      status.dataset.state = "pending";
      parts.push(
        "It is pending: the compliance officer has yet to erase your personal data. Until " +
          "then nothing more is collected about you, and this portal stays open.",
      );
    }
    status.replaceChildren(...parts);
    status.hidden = false;
    form.hidden = true;
  }

  const ROLE_NAMES = { compliance: "compliance officer", hiring_manager: "hiring manager" };

  async function loadVisibility() {
    const response = await call("GET", `/v1/candidates/${candidate}/visibility`);
    const view = await response.json();
    page("visibility-purpose").textContent = view.purposes.join(", ") || "none in force: nobody but you sees anything";
    const list = page("reader-list");
    list.replaceChildren();
    for (const reader of view.readers) {
      const card = el("article", undefined, {
        class: "card",
        "data-testid": "reader",
        "data-role": reader.role,
        "data-principal": reader.principal || "",
      });
      // a role's readers in general (no one named): "any reviewer", never "anyone", which
      // would read as if everybody could
      const heading = reader.principal
        ? `${reader.principal} (${reader.role.replace("_", " ")})`
        : `any ${ROLE_NAMES[reader.role] || reader.role.replace("_", " ")}`;
      card.append(el("h3", heading));
      card.append(el("p", reader.grounds.join("; "), { class: "dim" }));
      const allowed = el("p", undefined, { "data-testid": "reader-allowed", class: "allowed" });
      allowed.textContent = `sees: ${reader.allowed.join(", ") || "nothing"}`;
      allowed.dataset.categories = reader.allowed.join(" ");
      const withheld = el("p", undefined, { "data-testid": "reader-withheld", class: "withheld" });
      withheld.textContent = `does not see: ${reader.withheld.join(", ") || "—"}`;
      withheld.dataset.categories = reader.withheld.join(" ");
      card.append(allowed, withheld);
      list.append(card);
    }
    return view.cases;
  }

  async function loadAccessLog() {
    const log = await read(`/v1/candidates/${candidate}/access-log`);
    const body = page("access-entries");
    body.replaceChildren();
    for (const e of log.entries.slice().reverse()) {
      body.append(
        row(
          [
            cellOf(timeEl(e.at)),
            e.principal,
            e.authentication || "—",
            e.role || "—",
            e.purpose,
            e.view,
            e.outcome,
            [...e.returned, ...e.withheld.map((w) => `${w} (withheld)`)].join(", "),
          ],
          { "data-testid": "access-entry", "data-access-id": e.access_id },
        ),
      );
    }
  }

  // --- investigations and reports -------------------------------------------------------

  function exchanges(list, items, kind) {
    list.replaceChildren();
    if (!items.length) list.append(el("li", "none yet"));
    for (const x of items) {
      const li = el("li", undefined, { "data-testid": kind, "data-id": x.id });
      li.append(el("span", x.withheld ? "(withheld)" : x.words, { "data-testid": `${kind}-words` }));
      const answer = x.answer === null ? "not answered yet" : `answer: ${x.answer}`;
      const upheld = x.upheld === true ? " (upheld)" : x.upheld === false ? " (not upheld)" : "";
      li.append(el("div", answer + upheld, { "data-testid": `${kind}-answer`, class: "dim" }));
      list.append(li);
    }
  }

  async function loadInvestigation(id) {
    const inv = await read(`/v1/investigations/${id}`);
    const card = document.getElementById("investigation-template").content.firstElementChild.cloneNode(true);
    card.dataset.investigationId = id;
    byId(card, "investigation-id").textContent = id;
    byId(card, "investigation-status").textContent = inv.status;
    byId(card, "investigation-purpose").textContent = `purpose: ${inv.purpose}`;
    const checks = byId(card, "investigation-checks");
    const select = byId(card, "dispute-check");
    for (const c of inv.checks) {
      checks.append(row([c.check_type, c.categories.join(", "), c.concluded || "not concluded"]));
      select.append(el("option", c.check_type, { value: c.check_id }));
    }
    exchanges(byId(card, "feedback-list"), inv.feedback, "feedback");
    exchanges(byId(card, "dispute-list"), inv.disputes, "dispute");
    if (inv.status === "cancelled") {
      // shown, so the candidate sees every check that was planned about them; it takes
      // no feedback or dispute any more
      byId(card, "feedback-form").hidden = true;
      byId(card, "dispute-form").hidden = true;
      return card;
    }
    byId(card, "feedback-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = byId(card, "feedback-text").value;
      act(async () => {
        await call("POST", `/v1/investigations/${id}/feedback`, { text });
        return "Sent to the investigators.";
      });
    });
    byId(card, "dispute-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { check_id: select.value, statement: byId(card, "dispute-statement").value };
      act(async () => {
        await call("POST", `/v1/investigations/${id}/disputes`, body);
        return "Dispute raised; the report waits until it is answered.";
      });
    });
    return card;
  }

  async function loadReport(id) {
    const report = await read(`/v1/reports/${id}`);
    const card = document.getElementById("report-template").content.firstElementChild.cloneNode(true);
    card.dataset.reportId = id;
    byId(card, "report-id").textContent = id;
    byId(card, "report-edition").textContent = report.edition;
    byId(card, "report-status").textContent = report.status;
    const items = byId(card, "report-items");
    const select = byId(card, "report-dispute-check");
    for (const i of report.items) {
      items.append(
        row([i.check_type, i.outcome || "(withheld)", i.flags.join(", "), i.source_roles.join(", "), i.note || ""], {
          "data-testid": "report-item",
        }),
      );
      select.append(el("option", i.check_type, { value: i.check_id }));
    }
    byId(card, "report-dispute-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { check_id: select.value, statement: byId(card, "report-dispute-statement").value };
      act(async () => {
        await call("POST", `/v1/reports/${id}/disputes`, body);
        return "Report item disputed.";
      });
    });
    return card;
  }

  async function loadCases(cases) {
    const investigations = page("investigation-list");
    const reports = page("report-list");
    const invIds = cases.filter((c) => c.kind === "investigation").map((c) => c.id);
    const shared = cases.filter((c) => c.kind === "report" && c.shared_with_candidate && c.status !== "destroyed");
    investigations.replaceChildren(...(await Promise.all(invIds.map(loadInvestigation))));
    if (!invIds.length) investigations.append(el("p", "No investigation yet."));
    reports.replaceChildren(...(await Promise.all(shared.map((c) => loadReport(c.id)))));
    if (!shared.length) reports.append(el("p", "No report has been shared with you yet."));
  }

  // --- the access package ---------------------------------------------------------------

  async function downloadPackage() {
    const response = await call("POST", `/v1/candidates/${candidate}/access-package`);
    const blob = await response.blob();
    const link = el("a", undefined, {
      href: URL.createObjectURL(blob),
      download: `access-package-${candidate}.json`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    page("package-disclosure").textContent = response.headers.get("X-Disclosure-Id");
    page("package-result").hidden = false;
    return "Your data was downloaded.";
  }

  // --- putting it together --------------------------------------------------------------

  async function loadAll() {
    const settled = await Promise.allSettled([
      loadConsents(),
      loadProfile(),
      loadVisibility().then(loadCases),
    ]);
    await loadAccessLog().catch(fail); // last: it shows the reads just made
    for (const outcome of settled) if (outcome.status === "rejected") fail(outcome.reason);
    document.body.dataset.loaded = String(Date.now());
  }

  // One action at a time: a double click on "Grant" or "Withdraw" sends one command, not a
  // second one that the first has already made wrong (and whose refusal would then show).
  let busy = false;

  async function act(action) {
    if (busy) return;
    busy = true;
    document.body.setAttribute("aria-busy", "true");
    clearError();
    try {
      const message = await action();
      await loadAll();
      show(message);
    } catch (error) {
      fail(error);
      if (error instanceof Problem && error.status === 401) await signOut();
    } finally {
      busy = false;
      document.body.removeAttribute("aria-busy");
    }
  }

  function erasureForm() {
    const form = page("erasure-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = page("erasure-reason").value;
      act(async () => {
        await call("POST", `/v1/candidates/${candidate}/erasure-request`, { reason });
        page("erasure-reason").value = "";
        return "Your erasure request was recorded: nothing more is collected about you.";
      });
    });
  }

  async function start() {
    page("logout").addEventListener("click", () => signOut().catch(fail));
    page("download-package").addEventListener("click", () => act(downloadPackage));
    erasureForm();
    const token = takeToken();
    try {
      if (token) await signIn(token);
      const me = await (await call("GET", "/v1/me")).json();
      if (me.role !== "candidate" || me.assignments.length !== 1) {
        throw new Problem(403, "this portal is for candidates, opened from their link");
      }
      candidate = me.assignments[0];
      page("portal-principal").textContent = me.principal;
      const expires = sessionStorage.getItem(EXPIRES);
      page("portal-expires").replaceChildren(expires ? timeEl(expires) : "its end");
      page("portal-idle").textContent = sessionStorage.getItem(IDLE) || "a while";
      page("session").hidden = false;
      page("portal").hidden = false;
      await loadAll();
    } catch (error) {
      if (error instanceof Problem && (error.status === 401 || error.status === 403)) {
        page("portal-signed-out").hidden = false;
        if (token) fail(error); // a link that no longer works says why
        return;
      }
      fail(error);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    start();
  });
})();
