// The backcheck dashboard: the summary drawn as SVG bar charts (with the numbers as text and
// each chart as a table too), kept live from /v1/dashboard/stream, and the refused reads
// behind a day's bar from /v1/dashboard/refusals. No library, nothing from another host.
//
// The token is kept in sessionStorage (this tab only) and sent as a Bearer header on every
// request, the stream's too: the stream is read with fetch(), since EventSource cannot send a
// header, so the token is never in a URL and no cookie stands in for it.
"use strict";

(() => {
  const KEY = "backcheck.dashboard.token";
  const $ = (id) => document.getElementById(id);
  // The SVG namespace, as the page's own (empty) <svg> element has it.
  const SVG = () => $("svg-namespace").namespaceURI;
  let token = null;
  let controller = null; // aborts the stream on sign-out
  let fault = null; // the server's last fault that ended the stream, said until a summary comes
  let updates = 0;
  let last = null; // the newest summary
  let drill = null; // {day, principal, policy, cursor}

  // --- small DOM helpers (text only: nothing is ever parsed as HTML) ------------------------

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG(), tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "x";
  }

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = value === null || value === undefined ? "–" : String(value);
  }

  function pct(rate) {
    return rate === null || rate === undefined ? "–" : (rate * 100).toFixed(1) + " %";
  }

  function entries(counts) {
    return Object.entries(counts || {}).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  // --- charts ---------------------------------------------------------------------------

  // A table with the chart's numbers, for screen readers and anyone who prefers one.
  function tableOf(id, title, rows, heads) {
    const details = el("details", { class: "as-table" });
    details.append(el("summary", {}, "as a table"));
    const table = el("table", { "data-testid": "table-" + id });
    table.append(el("caption", {}, title));
    const head = el("tr");
    for (const h of heads) head.append(el("th", { scope: "col" }, h));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, row[0]));
      row.slice(1).forEach((v, i) => {
        const attrs = i === 0 ? { "data-testid": "value-" + id + "-" + slug(row[0]) } : {};
        tr.append(el("td", attrs, v === null ? "–" : String(v)));
      });
      body.append(tr);
    }
    table.append(body);
    details.append(table);
    return details;
  }

  // Horizontal bars: one per [label, value]; the value is written beside its bar.
  function barChart(id, title, rows, unit) {
    const host = $("chart-" + id);
    if (!host) return;
    const width = 520, labelW = 190, valueW = 70, rowH = 22, top = 4;
    const barMax = width - labelW - valueW;
    const max = Math.max(1, ...rows.map((r) => r[1] || 0));
    const height = top * 2 + Math.max(1, rows.length) * rowH;
    const titleId = "title-" + id;
    const svg = svgEl("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": titleId,
      class: "bars", "data-testid": "svg-" + id,
    });
    svg.append(svgEl("title", { id: titleId }, title));
    if (!rows.length) {
      svg.append(svgEl("text", { x: 0, y: top + 15, class: "empty" }, "nothing yet"));
    }
    rows.forEach(([label, value], i) => {
      const y = top + i * rowH;
      const w = value ? Math.max(2, (value / max) * barMax) : 0;
      const short = label.length > 28 ? label.slice(0, 27) + "…" : label;
      const text = svgEl("text", { x: labelW - 8, y: y + 15, class: "label", "text-anchor": "end" }, short);
      if (short !== label) text.append(svgEl("title", {}, label));
      svg.append(text);
      svg.append(svgEl("rect", {
        x: labelW, y: y + 3, width: w, height: rowH - 6, class: "bar",
        "data-testid": "bar-" + id + "-" + slug(label), "data-value": value === null ? "" : value,
      }));
      const shown = value === null ? "–" : String(value) + (unit || "");
      svg.append(svgEl("text", { x: labelW + w + 6, y: y + 15, class: "value" }, shown));
    });
    const heading = el("h3", {}, title);
    host.replaceChildren(heading, svg, tableOf(id, title, rows, ["", "n"]));
  }

  // Columns per day; `onPick(day)` makes each column a button.
  function dayChart(id, title, days, onPick) {
    const host = $("chart-" + id);
    if (!host) return;
    const width = 720, height = 170, left = 36, bottom = 34, top = 16;
    const max = Math.max(1, ...days.map((d) => d[1]));
    const step = days.length ? (width - left) / days.length : width - left;
    const colW = Math.max(3, Math.min(40, step - 4));
    const titleId = "title-" + id;
    const svg = svgEl("svg", {
      viewBox: `0 0 ${width} ${height}`, role: onPick ? "group" : "img",
      "aria-labelledby": titleId, class: "columns", "data-testid": "svg-" + id,
    });
    svg.append(svgEl("title", { id: titleId }, title));
    svg.append(svgEl("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
    svg.append(svgEl("text", { x: left - 4, y: top + 4, class: "tick", "text-anchor": "end" }, String(max)));
    svg.append(svgEl("text", { x: left - 4, y: height - bottom, class: "tick", "text-anchor": "end" }, "0"));
    if (!days.length) {
      svg.append(svgEl("text", { x: left + 8, y: height / 2, class: "empty" }, "nothing yet"));
    }
    days.forEach(([day, n], i) => {
      const h = n ? Math.max(2, (n / max) * (height - bottom - top)) : 0;
      const x = left + i * step + (step - colW) / 2;
      const y = height - bottom - h;
      const attrs = {
        x, y, width: colW, height: h, class: "col",
        "data-testid": "bar-" + id + "-" + day, "data-day": day, "data-value": n,
      };
      if (onPick) {
        Object.assign(attrs, {
          class: "col pick", role: "button", tabindex: 0,
          "aria-label": `${day}: ${n}; show the reads behind it`,
        });
      }
      const col = svgEl("rect", attrs);
      col.append(svgEl("title", {}, `${day}: ${n}`));
      if (onPick) {
        col.addEventListener("click", () => onPick(day));
        col.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(day); }
        });
      }
      svg.append(col);
      if (n) svg.append(svgEl("text", { x: x + colW / 2, y: y - 3, class: "value", "text-anchor": "middle" }, String(n)));
      if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) {
        svg.append(svgEl("text", { x: x + colW / 2, y: height - bottom + 14, class: "tick", "text-anchor": "middle" }, day.slice(5)));
      }
    });
    host.replaceChildren(el("h3", {}, title), svg, tableOf(id, title, days, ["day", "n"]));
  }

  // --- the summary ----------------------------------------------------------------------

  function render(s) {
    last = s;
    setText("stat-head", s.lag.head);
    setText("stat-behind", s.lag.behind);
    setText("stat-catch-up", s.lag.catch_up_ms);
    setText("stat-generated", s.generated_at);

    const p = s.pipeline;
    barChart("candidates", "Candidates by stage", entries(p.candidates));
    barChart("investigations", "Investigations by status", entries(p.investigations));
    barChart("reports", "Reports by status", entries(p.reports));
    setText("stat-awaiting-review", p.reports_awaiting_review);
    setText("stat-disclosures", p.report_disclosures);
    setText("stat-amendments", p.report_amendments);
    setText("stat-legal-holds", p.legal_holds);

    const c = s.checks;
    barChart("checks-planned", "Checks planned, by type", entries(c.planned));
    const concluded = [];
    for (const [type, outcomes] of entries(c.concluded)) {
      for (const [outcome, n] of entries(outcomes)) concluded.push([`${type} · ${outcome}`, n]);
    }
    barChart("checks-concluded", "Checks concluded, by type and outcome", concluded);
    setText("stat-discrepancy-rate", pct(c.discrepancy_rate));
    setText("stat-dispute-rate", pct(c.dispute_rate));
    setText("stat-disputes", (c.disputes || {}).raised || 0);

    const turnaround = [];
    for (const t of s.turnaround) {
      for (const q of ["p50", "p90", "p99"]) turnaround.push([`${t.check_type} ${q}`, t[q + "_hours"]]);
    }
    barChart("turnaround", "Turnaround percentiles (hours)", turnaround, " h");

    const r = s.refusals;
    setText("stat-refusals", r.total);
    dayChart("refusals-daily", "Refused reads per day", r.days.map((d) => [d.day, d.total]), openDrill);
    barChart("refusals-policy", "Refused reads by deciding policy", entries(r.by_policy));
    const byPrincipal = entries(r.by_principal);
    barChart("refusals-principal", r.total && !byPrincipal.length
      ? "Refused reads by principal (compliance officers only)"
      : "Refused reads by principal", byPrincipal);

    barChart("access", "Reads and hand-overs", entries(s.access));
    barChart("consents", "Consents by stage", entries(s.consents.by_stage));
    const e = s.erasures;
    setText("stat-erasures-requested", e.requested);
    setText("stat-erasures-completed", e.completed);
    setText("stat-erasures-pending", e.pending);
    setText("stat-retention-due", Object.values(e.retention_due).reduce((a, b) => a + b, 0));

    const ch = s.chain;
    setText("stat-chain-position", ch.last_checkpoint_position);
    setText("stat-chain-age", ch.last_checkpoint_age_seconds === null ? null
      : Math.round(ch.last_checkpoint_age_seconds) + " s");
    setText("stat-chain-since", ch.events_since_checkpoint);
    setText("stat-chain-verified", ch.last_verified_at || "not recorded");
    const state = ch.last_checkpoint_position === null ? "no checkpoint kept yet"
      : ch.events_since_checkpoint === 0 ? "checkpointed up to the head"
        : `${ch.events_since_checkpoint} events since the last checkpoint`;
    setText("chain-state", state);

    dayChart("daily", "Events per day", s.daily.map((d) => [d.day, d.events]), null);

    updates += 1;
    setText("stat-updates", updates);
    $("board").setAttribute("data-updates", String(updates));
    $("board").setAttribute("data-head", String(s.lag.head));
    if (drill) fillFilters();
  }

  // --- the drill-down -------------------------------------------------------------------

  function openDrill(day) {
    drill = { day, principal: "", policy: "", cursor: null };
    $("drilldown").hidden = false;
    setText("drill-day", day);
    fillFilters();
    loadDrill(true);
    $("drilldown").scrollIntoView({ block: "nearest" });
  }

  function fillFilters() {
    const found = last ? last.refusals.days.find((d) => d.day === drill.day) : null;
    for (const [id, field, counts] of [
      ["drill-principal", "principal", found ? found.by_principal : {}],
      ["drill-policy", "policy", found ? found.by_policy : {}],
    ]) {
      const select = $(id);
      const options = [el("option", { value: "" }, "any")];
      for (const [name, n] of entries(counts)) {
        if (name === "(other)") continue; // counted together: no list to drill into
        options.push(el("option", { value: name }, `${name} (${n})`));
      }
      select.replaceChildren(...options);
      select.value = drill[field];
    }
  }

  async function loadDrill(fresh) {
    const params = new URLSearchParams({ day: drill.day, limit: "50" });
    if (drill.principal) params.set("principal", drill.principal);
    if (drill.policy) params.set("policy", drill.policy);
    if (!fresh && drill.cursor) params.set("cursor", drill.cursor);
    if (fresh) $("drill-rows").replaceChildren();
    setText("drill-message", "loading…");
    const r = await api("/v1/dashboard/refusals?" + params.toString());
    if (!r.ok) {
      const problem = await r.json().catch(() => ({}));
      setText("drill-message", problem.detail || `the server answered ${r.status}`);
      $("drill-more").hidden = true;
      return;
    }
    const page = await r.json();
    const rows = $("drill-rows");
    for (const item of page.items) {
      const tr = el("tr", { "data-testid": "refusal-row", "data-access-id": item.access_id });
      const cells = [item.position, item.at, item.principal, item.role, item.authentication,
        item.purpose, item.view, item.candidate_id, item.policy_ids.join(", ") || "(none)"];
      cells.forEach((v, i) => tr.append(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, String(v))));
      rows.append(tr);
    }
    drill.cursor = page.next_cursor;
    $("drill-more").hidden = !page.next_cursor;
    const n = rows.children.length;
    setText("drill-message", n ? `${n} refused read${n === 1 ? "" : "s"} shown` + (page.next_cursor ? "; more below" : "")
      : "no refused reads match");
  }

  // --- talking to the server ------------------------------------------------------------

  function api(path, init) {
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    return fetch(path, Object.assign({ headers, cache: "no-store", credentials: "omit" }, init || {}));
  }

  function status(text, state) {
    setText("status", text);
    $("status").setAttribute("data-state", state);
  }

  // Reads text/event-stream from a fetch() body: blocks of lines ended by a blank line.
  async function follow(signal) {
    let wait = 1000;
    while (!signal.aborted) {
      try {
        const r = await api("/v1/dashboard/stream", { signal, headers: {
          Authorization: "Bearer " + token, Accept: "text/event-stream" } });
        if (r.status === 401) return signOut("your token no longer signs in; sign in again");
        if (r.status === 403) {
          const problem = await r.json().catch(() => ({}));
          return status(problem.detail || "your role may not see the dashboard", "refused");
        }
        if (!r.ok || !r.body) throw new Error(`the stream answered ${r.status}`);
        status("live", "live");
        wait = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const ended = handle(block);
            if (ended) return signOut(ended);
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        console.error("dashboard stream:", error);
      }
      // the server's own fault ended the stream (a `problem` event): said, then tried again
      const again = `trying again in ${Math.round(wait / 1000)} s`;
      if (fault) status(`${fault}; ${again}`, "fault");
      else status(`reconnecting in ${Math.round(wait / 1000)} s`, "reconnecting");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 30000);
    }
  }

  // One event; returns a reason to stop when the server signed us out.
  function handle(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a heartbeat
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (kind === "summary" && data.length) {
      fault = null;
      status("live", "live");
      render(JSON.parse(data.join("\n")));
    }
    if (kind === "problem") {
      const problem = JSON.parse(data.join("\n") || "{}");
      fault = `the dashboard could not be updated (${problem.title || "a fault"}): ${problem.detail || ""}`;
    }
    if (kind === "signed-out") return (JSON.parse(data.join("\n") || "{}").detail) || "signed out";
    return null;
  }

  async function signIn(candidate) {
    if (controller) controller.abort(); // one stream per tab
    controller = null;
    token = candidate;
    const r = await api("/v1/me").catch(() => null);
    if (!r || !r.ok) {
      token = null;
      sessionStorage.removeItem(KEY);
      const problem = r ? await r.json().catch(() => ({})) : {};
      setText("sign-in-error", problem.detail || "the server could not be reached");
      return;
    }
    const me = await r.json();
    sessionStorage.setItem(KEY, candidate);
    setText("sign-in-error", "");
    setText("who", `${me.principal} (${me.role})`);
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    $("board").hidden = false;
    status("connecting", "connecting");
    controller = new AbortController();
    follow(controller.signal);
  }

  function signOut(reason) {
    if (controller) controller.abort();
    controller = null;
    token = null;
    sessionStorage.removeItem(KEY);
    $("token").value = "";
    $("board").hidden = true;
    $("drilldown").hidden = true;
    $("sign-in").hidden = false;
    $("sign-out").hidden = true;
    setText("who", "");
    setText("sign-in-error", reason || "");
    status("signed out", "signed-out");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("token").value.trim();
      if (value) signIn(value);
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("drill-close").addEventListener("click", () => { drill = null; $("drilldown").hidden = true; });
    $("drill-more").addEventListener("click", () => loadDrill(false));
    $("drill-principal").addEventListener("change", (e) => { drill.principal = e.target.value; loadDrill(true); });
    $("drill-policy").addEventListener("change", (e) => { drill.policy = e.target.value; loadDrill(true); });
    const kept = sessionStorage.getItem(KEY);
    if (kept) signIn(kept);
  });
})();
