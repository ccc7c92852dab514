// One interview: facts, the stereo recording, the timestamped transcript, the scorecard (per-factor bars,
// reasoning, citations that jump to the transcript line) and its history, pushed live while it runs.
"use strict";

const interviewId = decodeURIComponent(location.pathname.split("/").pop());
const rendered = {}; // section -> the JSON it was last drawn from, so unchanged sections are left alone

function changed(section, value) {
  const json = JSON.stringify(value);
  if (rendered[section] === json) return false;
  rendered[section] = json;
  return true;
}

function renderFacts(i) {
  document.getElementById("candidate-name").textContent = i.candidate.name;
  document.title = "phonescreen · " + i.candidate.name;
  const ended = i.endedAt ? Date.parse(i.endedAt) : serverNow();
  const facts = [
    ["Status", statusBadge(i.status)],
    ["Channel", channelLabel(i.channel)],
    ["Position", `${i.position.title} (v${i.position.version})`],
    ["Contact", [i.candidate.phone, i.candidate.email].filter(Boolean).join(" · ") || "–"],
    ["Started", localTime(i.startedAt)],
    ["Ended", localTime(i.endedAt)],
    ["Duration", i.startedAt ? duration((ended - Date.parse(i.startedAt)) / 1000) : "–"],
  ];
  if (i.currentFactor) facts.push(["Current factor", i.currentFactor]);
  if (i.endReason) facts.push(["Why it ended", END_REASON_LABELS[i.endReason] || i.endReason]);
  if (i.callbackAt) facts.push(["Call back at", localTime(i.callbackAt)]);
  if (i.outcomeCode) facts.push(["Outcome", i.outcomeCode]);
  for (const v of i.invitations) {
    const state = `${v.channel === "sms" ? "SMS" : "E-mail"}: ${v.status}` + (v.reason ? ` (${v.reason})` : "");
    facts.push(["Invitation", el("span", { className: "invitation", dataset: { status: v.status } }, state)]);
  }
  document.getElementById("invite").hidden = !i.canInvite;
  document.getElementById("facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function renderRecording(url) {
  const panel = document.getElementById("recording-panel");
  panel.hidden = !url;
  const player = document.getElementById("recording");
  if (url && player.getAttribute("src") !== url) player.setAttribute("src", url);
}

function seek(ms) {
  const player = document.getElementById("recording");
  if (!player.getAttribute("src")) return;
  player.currentTime = ms / 1000;
  player.play().catch(() => {});
}

function renderTranscript(turns) {
  const items = turns.map((t) => el("li", { id: "turn-" + t.turnNumber, className: "turn " + t.role },
    el("button", { type: "button", className: "timestamp", title: "Play from here", onclick: () => seek(t.startMs) },
      clock(t.startMs)),
    el("span", { className: "who" }, ROLE_LABELS[t.role] || t.role),
    el("span", { className: "text" }, t.text, t.interrupted ? el("em", { className: "muted" }, " (interrupted)") : null),
    t.role === "candidate" && t.sttConfidence !== null
      ? el("span", { className: "confidence", title: "speech-to-text confidence" },
        Math.round(t.sttConfidence * 100) + "%") : null));
  document.getElementById("transcript").replaceChildren(...items);
  document.getElementById("no-turns").hidden = turns.length > 0;
  if (location.hash) highlight(location.hash.slice(1));
}

function highlight(id) {
  for (const node of document.querySelectorAll(".turn.cited")) node.classList.remove("cited");
  const target = document.getElementById(id);
  if (target) { target.classList.add("cited"); target.scrollIntoView({ block: "center" }); }
}

const SCORE_SCALE = 100; // factor scores are 0-100 (scoring/schema.py)

function entries(object) {
  if (!object || typeof object !== "object") return [];
  return Object.entries(object).map(([k, v]) => [k.replace(/([A-Z])/g, " $1").toLowerCase(),
    v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v)]);
}

function renderScorecard(card) {
  const box = document.getElementById("scorecard");
  document.getElementById("no-scorecard").hidden = !!card;
  if (!card) { box.replaceChildren(); return; }
  const data = card.data || {};
  const factors = data.factors || [];
  const scale = SCORE_SCALE;
  const rows = factors.map((f) => {
    const share = f.score === null || f.score === undefined ? 0 : Math.max(0, Math.min(1, f.score / scale));
    const fill = el("div", { className: "fill" });
    fill.style.width = (share * 100).toFixed(1) + "%";
    return el("div", { className: "factor", dataset: { factor: f.key || f.name } },
      el("div", { className: "factor-head" }, el("strong", {}, f.name),
        el("span", { className: "muted" }, ` weight ${Math.round(f.weight * 100)}%`),
        el("span", { className: "score" }, f.score === null || f.score === undefined ? "–" : `${f.score} / ${scale}`)),
      el("div", { className: "bar", role: "img", "aria-label": `${f.name}: ${f.score} of ${scale}` }, fill),
      f.reasoning ? el("p", { className: "reasoning" }, f.reasoning) : null,
      (f.citations || []).length ? el("ul", { className: "citations" }, f.citations.map((c) =>
        el("li", {}, el("a", { className: "citation", href: "#turn-" + c.turn,
          onclick: () => setTimeout(() => highlight("turn-" + c.turn), 0) }, `turn ${c.turn}`),
        c.quote ? el("q", {}, c.quote) : null))) : null);
  });
  const extra = [["Language", data.language], ["AI feedback", data.aiFeedback]]
    .filter(([, v]) => v && typeof v === "object")
    .map(([title, v]) => el("div", { className: "extra" }, el("h3", {}, title),
      el("dl", { className: "facts small" }, entries(v).flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)]))));
  const notes = [...(data.lowConfidenceReasons || []), ...(data.notes || [])];
  const overall = el("div", { className: "overall" }, el("span", { className: "big" }, card.overall ?? "–"),
    el("span", { className: "muted", title: "rubric " + card.rubricVersion },
      ` overall · ${card.status} · version ${card.version} · rubric ${String(card.rubricVersion).slice(0, 12)}`));
  const noteList = notes.length ? el("div", { className: "extra" }, el("h3", {}, "Notes"),
    el("ul", {}, notes.map((n) => el("li", {}, n)))) : null;
  box.replaceChildren(...[overall, ...rows, ...extra, noteList].filter(Boolean));
}

function renderEvents(events) {
  document.getElementById("events").replaceChildren(...events.map((e) => el("li", {},
    el("span", { className: "muted" }, localTime(e.createdAt)), " ", e.type.replace("interview.", ""),
    e.data && e.data.to ? [" → ", statusBadge(e.data.to)] : null,
    e.data && e.data.reason ? el("span", { className: "muted" }, " · " + e.data.reason) : null)));
}

const ROLE_LABELS = { agent: "AI", candidate: "Candidate", recruiter: "Recruiter" };

function renderNotes(notes) {
  // A recruiter-led call: the recruiter's notes beside the scorecard.
  document.getElementById("notes-panel").hidden = !notes;
  document.getElementById("notes").textContent = notes ? notes.text : "";
}

function render(i) {
  document.getElementById("not-found").hidden = true;
  if (changed("facts", [i.status, i.startedAt, i.endedAt, i.currentFactor, i.outcomeCode, i.endReason, i.callbackAt,
                       i.invitations, i.canInvite])) renderFacts(i);
  if (changed("recording", i.recordingUrl)) renderRecording(i.recordingUrl);
  if (changed("turns", i.turns)) renderTranscript(i.turns);
  if (changed("scorecard", i.scorecard)) renderScorecard(i.scorecard);
  if (changed("events", i.events)) renderEvents(i.events);
  if (changed("notes", i.notes)) renderNotes(i.notes);
  if (i.ledBy) document.getElementById("recording-note").textContent = i.ledBy === "ai_handover"
    ? "Stereo: the candidate on the left; the recruiter, then the AI interviewer, on the right."
    : "Stereo: the candidate on the left, the recruiter on the right.";
}

document.addEventListener("DOMContentLoaded", async () => {
  window.addEventListener("hashchange", () => highlight(location.hash.slice(1)));
  const response = await fetch("/admin/api/interviews/" + encodeURIComponent(interviewId));
  if (response.status === 401) { location.assign("/admin/login?next=" + encodeURIComponent(location.pathname)); return; }
  if (!response.ok) { document.getElementById("not-found").hidden = false; return; }
  render(await response.json());
  live("/admin/events/interviews/" + encodeURIComponent(interviewId), render);
});

// The interview page's invitation buttons: the server queues the message; its state arrives with the
// next pushed snapshot.
async function sendInvitation(channel) {
  const result = document.getElementById("invite-result");
  const response = await fetch(`/admin/api/interviews/${encodeURIComponent(interviewId)}/invitations`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ channel }),
  });
  const body = await response.json().catch(() => ({}));
  result.textContent = response.ok ? "Queued." : ((body.error && body.error.message) || "Could not send.");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("invite-email").addEventListener("click", () => sendInvitation("email"));
  document.getElementById("invite-sms").addEventListener("click", () => sendInvitation("sms"));
});
