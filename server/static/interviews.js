// The interview list with filters. The filters live in the address (shareable, kept on reload); the list
// is fetched again whenever the server pushes a change.
"use strict";

const PAGE_SIZE = 25;
let page = 1;
let choicesFilled = false;

function filterValues() {
  const form = document.getElementById("filters");
  const values = {};
  for (const field of form.elements) if (field.name && field.value) values[field.name] = field.value;
  return values;
}

function fillChoices(body) {
  if (choicesFilled) return;
  choicesFilled = true;
  const form = document.getElementById("filters");
  const add = (name, options) => {
    const select = form.elements[name];
    for (const [value, label] of options) select.append(el("option", { value }, label));
  };
  add("status", body.statuses.map((s) => [s, STATUS_LABELS[s] || s]));
  add("channel", body.channels.map((c) => [c, channelLabel(c)]));
  add("campaignId", body.campaigns.map((c) => [c.id, c.name]));
  add("positionId", body.positions.map((p) => [p.id, p.title]));
  const wanted = new URLSearchParams(location.search);
  for (const field of form.elements) if (field.name && wanted.get(field.name)) field.value = wanted.get(field.name);
}

async function load() {
  const query = new URLSearchParams({ ...filterValues(), page: String(page), pageSize: String(PAGE_SIZE) });
  const response = await fetch("/admin/api/interviews?" + query);
  if (response.status === 401) { location.assign("/admin/login?next=/admin/interviews"); return; }
  const body = await response.json();
  if (!response.ok) { document.getElementById("page-info").textContent = body.error.message; return; }
  const firstLoad = !choicesFilled;
  fillChoices(body);
  if (firstLoad && location.search) { load(); return; } // the address named filters: apply them
  const rows = body.items.map((i) => el("tr", { dataset: { interview: i.id } },
    el("td", {}, el("a", { href: "/admin/interviews/" + encodeURIComponent(i.id) }, i.candidate)),
    el("td", {}, i.position),
    el("td", {}, i.campaign || "–"),
    el("td", {}, channelLabel(i.channel)),
    el("td", {}, statusBadge(i.status)),
    el("td", { className: "invitation" }, i.invitation || "–"),
    el("td", {}, i.overall === null || i.overall === undefined ? "–" : String(i.overall)),
    el("td", {}, localTime(i.createdAt))));
  replaceRows(document.querySelector("#interviews tbody"), rows);
  document.getElementById("no-interviews").hidden = rows.length > 0;
  const pages = Math.max(1, Math.ceil(body.total / PAGE_SIZE));
  document.getElementById("page-info").textContent = `Page ${page} of ${pages} · ${body.total} interviews`;
  document.getElementById("previous").disabled = page <= 1;
  document.getElementById("next").disabled = page >= pages;
}

function filtersChanged() {
  page = 1;
  const query = new URLSearchParams(filterValues()).toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  form.addEventListener("change", filtersChanged);
  form.addEventListener("submit", (event) => { event.preventDefault(); filtersChanged(); });
  let typing = null;
  form.elements.q.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(filtersChanged, 300); });
  document.getElementById("previous").addEventListener("click", () => { page -= 1; load(); });
  document.getElementById("next").addEventListener("click", () => { page += 1; load(); });
  load();
  live("/admin/events", () => { if (choicesFilled) load(); });
});
