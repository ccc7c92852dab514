// The dashboard: counters, active calls, campaign progress and the latest changes, pushed live.
"use strict";

let activeCalls = [];

function renderCounters(counters) {
  for (const [key, id] of [["dialing", "counter-dialing"], ["ringing", "counter-ringing"],
    ["inProgress", "counter-in-progress"], ["completedToday", "counter-completed-today"],
    ["failedToday", "counter-failed-today"]]) {
    document.getElementById(id).textContent = counters[key];
  }
  const detail = Object.entries(counters.failedTodayByStatus || {})
    .map(([status, n]) => n + " " + (STATUS_LABELS[status] || status).toLowerCase());
  document.getElementById("failed-detail").textContent = detail.join(", ");
}

function renderActive(calls) {
  activeCalls = calls;
  const rows = calls.map((call) => {
    const last = call.lastUtterance;
    return el("tr", { dataset: { interview: call.id } },
      el("td", {}, el("a", { href: "/admin/interviews/" + encodeURIComponent(call.id) }, call.candidate)),
      el("td", {}, channelLabel(call.channel)),
      el("td", {}, statusBadge(call.status)),
      el("td", { className: "duration" }, ""),
      el("td", { className: "factor" }, call.currentFactor || "–"),
      el("td", { className: "utterance" }, last
        ? [el("span", { className: "who " + last.role }, last.role === "agent" ? "AI" : "Candidate"), " ", last.text]
        : "–"),
    );
  });
  replaceRows(document.querySelector("#active-calls tbody"), rows);
  document.getElementById("no-active-calls").hidden = calls.length > 0;
  document.getElementById("active-calls").hidden = calls.length === 0;
  tickDurations();
}

function tickDurations() {
  const now = serverNow();
  for (const call of activeCalls) {
    const row = document.querySelector(`#active-calls tr[data-interview="${CSS.escape(call.id)}"] .duration`);
    if (row) row.textContent = duration((now - Date.parse(call.since)) / 1000);
  }
}

function renderCampaigns(campaigns) {
  const items = campaigns.map((c) => {
    const total = Math.max(c.total, 1);
    const part = (n, cls, label) => n ? el("div", { className: "segment " + cls, title: n + " " + label,
      dataset: { share: (100 * n / total).toFixed(2) } }) : null;
    const bar = el("div", { className: "progress", role: "img",
      "aria-label": `${c.completed} completed, ${c.failed} failed, ${c.active} active of ${c.total}` },
      part(c.completed, "completed", "completed"), part(c.failed, "failed", "failed"),
      part(c.active, "active", "active"));
    for (const segment of bar.children) segment.style.width = segment.dataset.share + "%";
    return el("div", { className: "campaign", dataset: { campaign: c.id } },
      el("div", { className: "campaign-head" }, el("strong", {}, c.name), " ",
        el("span", { className: "muted" }, channelLabel(c.channel) + " · " + c.status)),
      // A campaign whose channel cannot dial on this server waits: say why, not just "running".
      c.blockedReason ? el("div", { className: "blocked small", role: "status" }, "Cannot dial: " + c.blockedReason)
        : null,
      bar,
      el("div", { className: "muted small" },
        `${c.completed + c.failed} of ${c.total} done · ${c.completed} completed · ${c.failed} failed · ` +
        `${c.active} active · ${c.scheduled} scheduled`));
  });
  document.getElementById("campaigns").replaceChildren(...items);
  document.getElementById("no-campaigns").hidden = campaigns.length > 0;
}

function renderRecent(recent) {
  replaceRows(document.querySelector("#recent tbody"), recent.map((i) => el("tr", { dataset: { interview: i.id } },
    el("td", {}, el("a", { href: "/admin/interviews/" + encodeURIComponent(i.id) }, i.candidate)),
    el("td", {}, channelLabel(i.channel)),
    el("td", {}, statusBadge(i.status)),
    el("td", {}, localTime(i.updatedAt)))));
}

document.addEventListener("DOMContentLoaded", () => {
  live("/admin/events", (data) => {
    renderCounters(data.counters);
    renderActive(data.active);
    renderCampaigns(data.campaigns);
    renderRecent(data.recent);
  });
  setInterval(tickDurations, 1000);
});
