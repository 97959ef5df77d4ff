"""``GET /``: a small self-contained HTML page showing every source's health.

It reads ``/v1/sources`` from the browser. Everything is inline: an operator's server
may have no Internet access, and a Content-Security-Policy forbids any other origin.
Untrusted text (upstream error messages, titles) is only ever set as ``textContent``.
"""

from __future__ import annotations

from aiohttp import web

from aggregator.api.routing import ApiRouter

PATH = "/"
REFRESH_S = 15
CSP = (
    "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Beffroi · sources</title>
<style>
  :root { --ok:#1a7f37; --degraded:#9a6700; --stale:#bc4c00; --failing:#cf222e;
          --never_loaded:#6e7781; --bg:#f6f8fa; --card:#fff; --text:#1f2328; --muted:#59636e; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
         background:var(--bg); color:var(--text); }
  header { padding:14px 16px; background:#24292f; color:#fff; }
  header h1 { margin:0; font-size:18px; }
  header p { margin:4px 0 0; font-size:13px; color:#d0d7de; }
  #summary { display:flex; flex-wrap:wrap; gap:6px; margin-top:8px; }
  main { padding:12px; display:grid; gap:12px;
         grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); }
  .card { background:var(--card); border:1px solid #d0d7de; border-left:6px solid var(--muted);
          border-radius:8px; padding:12px; min-width:0; }
  .card h2 { margin:0 0 2px; font-size:16px; overflow-wrap:anywhere; }
  .sub { color:var(--muted); font-size:13px; overflow-wrap:anywhere; }
  .badge { display:inline-block; padding:1px 8px; border-radius:999px; color:#fff;
           font-size:12px; font-weight:600; background:var(--muted); }
  dl { display:grid; grid-template-columns:auto 1fr; gap:2px 10px; margin:8px 0 0; font-size:13px; }
  dt { color:var(--muted); } dd { margin:0; overflow-wrap:anywhere; }
  .error { margin-top:8px; padding:6px 8px; border-radius:6px; background:#ffebe9;
           color:#82071e; font-size:13px; overflow-wrap:anywhere; }
  .issues { margin-top:6px; font-size:12px; color:var(--degraded); overflow-wrap:anywhere; }
  #problem { margin:12px; padding:10px; border-radius:6px; background:#ffebe9; color:#82071e; }
  @media (max-width:420px) { main { padding:8px; grid-template-columns:1fr; } }
</style>
</head>
<body>
<header>
  <h1>Beffroi · sources</h1>
  <p id="updated">Loading…</p>
  <div id="summary"></div>
</header>
<div id="problem" hidden></div>
<main id="sources" aria-live="polite"></main>
<script>
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const STATES = ["failing", "stale", "degraded", "never_loaded", "ok"];

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function span(s) {
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " days";
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 0 ? "in " + span(-s) : span(s) + " ago";
}

function badge(state) {
  const b = el("span", {"class": "badge state", "data-state": state}, state.replace("_", " "));
  b.style.background = "var(--" + state + ")";
  return b;
}

function row(dl, label, value) {
  dl.append(el("dt", {}, label), el("dd", {}, value));
}

function statText(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function card(source) {
  const c = el("section",
    {"class": "card", "data-source-id": source.id, "data-state": source.state});
  c.style.borderLeftColor = "var(--" + source.state + ")";
  const h = el("h2", {}, source.title || source.id);
  c.append(h, badge(source.state));
  c.append(el("div", {"class": "sub"}, source.id + " · " + source.type + " · "
    + source.refresh + (source.required ? " · required" : "")));
  const dl = el("dl");
  row(dl, "Last success", ago(source.last_success));
  row(dl, "Last attempt", ago(source.last_attempt));
  row(dl, "Next run", source.next_run ? new Date(source.next_run).toLocaleTimeString() : "–");
  row(dl, "Records", statText(source.record_count));
  const polls = source.polls || {};
  row(dl, "Polls", (polls.total || 0) + " (" + (polls.failed || 0) + " failed, "
    + source.consecutive_failures + " in a row)");
  for (const [key, value] of Object.entries(source.stats || {})) row(dl, key, statText(value));
  c.append(dl);
  if (source.waiting_for) {
    c.append(el("div", {"class": "issues"}, "Waiting: " + source.waiting_for));
  }
  if (source.stale_reason) {
    const content = source.content || {};
    c.append(el("div", {"class": "error stale-reason", "data-reason": source.stale_reason},
      "Stale (" + source.stale_reason + ")"
      + (content.detail ? ": " + content.detail : "")
      + (content.since ? ", since " + ago(content.since) : "")));
  }
  if (source.last_error) {
    c.append(el("div", {"class": "error last-error"},
      "Last error (" + ago(source.last_error_at) + "): " + source.last_error));
  }
  const issues = source.issues || {count: 0, examples: []};
  if (issues.count) {
    const examples = (issues.examples || []).slice(0, 2);
    c.append(el("div", {"class": "issues"}, issues.count + " skipped rows"
      + (examples.length ? ", e.g. " + examples.join(" · ") : "")));
  }
  return c;
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    const response = await fetch("v1/sources",
      {cache: "no-store", headers: {"Accept": "application/json"}});
    if (!response.ok) throw new Error("the API answered " + response.status);
    const body = await response.json();
    const sources = body.data.slice().sort((a, b) =>
      STATES.indexOf(a.state) - STATES.indexOf(b.state) || a.id.localeCompare(b.id));
    document.getElementById("sources").replaceChildren(...sources.map(card));
    const counts = {};
    for (const s of sources) counts[s.state] = (counts[s.state] || 0) + 1;
    document.getElementById("summary").replaceChildren(...STATES.filter(s => counts[s]).map(s => {
      const b = badge(s); b.textContent = counts[s] + " " + s.replace("_", " "); return b; }));
    document.getElementById("updated").textContent = sources.length + " sources · updated "
      + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s";
    problem.hidden = true;
  } catch (error) {
    problem.hidden = false;
    problem.textContent = "Cannot read /v1/sources: " + error.message
      + " (showing the last answer)";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
""".replace("__REFRESH_MS__", str(REFRESH_S * 1000))


async def status_page(request: web.Request) -> web.Response:
    """The page itself; its data comes from /v1/sources, fetched by the browser."""
    response = web.Response(text=PAGE_HTML, content_type="text/html", charset="utf-8")
    # The page is static; always revalidate so a new release's page is picked up.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CSP
    return response


def register_status_page(router: ApiRouter) -> None:
    """Declare ``GET /`` (outside the JSON envelope, listed in the OpenAPI document)."""
    if router.lookup("GET", PATH) is not None:
        return
    router.get(
        PATH,
        status_page,
        summary="The operator's page: every source's state, freshness, last error, counters",
        tags=["operations"],
        response={"type": "string"},
        media_type="text/html",
        enveloped=False,
        errors=[],
    )
