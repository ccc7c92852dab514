// A recruiter-led call: pick a candidate and click "Call". The microphone goes to the server over the web
// channel's audio path (the same AudioWorklet as /join, PCM16 16 kHz on a WebSocket); the server dials the
// candidate's phone and bridges the two. The copilot pane is pushed live (server-sent events): the plan with
// coverage ticks, the next suggested question, each answer's evaluation, the transcript. Notes save as you type.
"use strict";

const NOTES_DELAY_MS = 400; // save after a short pause in typing
const CALL_STATES = { dialing: "Calling the candidate…", live: "On the call", ai: "The AI is finishing the interview",
  ended: "The call has ended" };
const ROLE_NAMES = { agent: "AI", candidate: "Candidate", recruiter: "You" };
const $ = (id) => document.getElementById(id);
let audio = null; // {context, node, stream}
let socket = null;
let interviewId = null;
let notesTimer = null;
const drawn = {};

function changedPart(part, value) {
  const json = JSON.stringify(value);
  if (drawn[part] === json) return false;
  drawn[part] = json;
  return true;
}

function setCallState(state) {
  $("call-state").dataset.state = state;
  $("call-state").textContent = CALL_STATES[state] || state;
}

async function loadPicker() {
  const response = await fetch("/admin/api/recruiter-candidates");
  if (response.status === 401) { location.assign("/admin/login?next=/admin/recruiter"); return; }
  const data = await response.json();
  $("position").replaceChildren(...data.positions.map((p) => el("option", { value: p.id }, p.title)));
  $("candidates").replaceChildren(...data.candidates.map((c) => el("tr", { dataset: { candidate: c.id } },
    el("td", {}, c.name), el("td", {}, c.phone),
    el("td", {}, el("button", { type: "button", className: "call", onclick: () => call(c) }, "Call")))));
}

async function call(candidate) {
  $("picker-error").textContent = "";
  let stream;
  try { // first, while the click still counts as a user gesture
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true,
      noiseSuppression: true, autoGainControl: true } });
  } catch (error) {
    $("picker-error").textContent = "The call needs your microphone (" + (error.name || "no microphone") + ").";
    return;
  }
  const response = await fetch("/admin/api/recruiter-calls", { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ candidateId: candidate.id, positionId: $("position").value }) });
  const body = await response.json();
  if (!response.ok) {
    for (const track of stream.getTracks()) track.stop();
    $("picker-error").textContent = body.error ? body.error.message : "The call could not be placed.";
    return;
  }
  interviewId = body.interviewId;
  history.replaceState(null, "", body.page);
  $("candidate-name").textContent = candidate.name;
  $("picker").hidden = true;
  $("call").hidden = false;
  await startAudio(stream);
  connect();
  live("/admin/events/interviews/" + encodeURIComponent(interviewId) + "/copilot", renderCopilot);
}

async function startAudio(stream) {
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/audio-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-bridge", { numberOfInputs: 1, numberOfOutputs: 1,
    outputChannelCount: [1] });
  context.createMediaStreamSource(stream).connect(node);
  node.connect(context.destination);
  audio = { context, node, stream };
  node.port.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer && socket && socket.readyState === WebSocket.OPEN
        && $("call-state").dataset.state === "live") socket.send(event.data);
  };
  await context.resume();
}

function stopAudio() {
  if (!audio) return;
  for (const track of audio.stream.getTracks()) track.stop();
  audio.context.close().catch(() => {});
  audio = null;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/admin/ws/recruiter/" + encodeURIComponent(interviewId));
  socket.binaryType = "arraybuffer";
  setCallState("dialing");
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      if (audio) audio.node.port.postMessage({ type: "play", pcm: event.data }, [event.data]);
      return;
    }
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "error") $("call-error").textContent = message.message;
    if (message.type === "ended") ended();
  };
  socket.onclose = () => ended();
}

function ended() {
  if ($("call-state").dataset.state === "ended") return;
  setCallState("ended");
  stopAudio();
  $("hangup").disabled = true;
  $("handover").disabled = true;
}

function renderCopilot(c) {
  $("status").replaceChildren(statusBadge(c.status));
  const state = $("call-state").dataset.state;
  if (c.status === "in_progress" && state === "dialing") setCallState(c.ledBy === "ai_handover" ? "ai" : "live");
  if (c.ledBy === "ai_handover" && state !== "ended") setCallState("ai");
  if (!["scheduled", "dialing", "ringing", "in_progress"].includes(c.status)) {
    ended();
    const link = $("report-link");
    link.href = "/admin/interviews/" + encodeURIComponent(c.interviewId);
    link.hidden = false;
  }
  if (changedPart("plan", c.plan)) {
    $("plan").replaceChildren(...c.plan.map((p) => el("li", { className: p.covered ? "covered" : "",
      dataset: { factor: p.factor } }, p.factor)));
  }
  if (changedPart("suggestion", c.suggestion)) {
    $("no-suggestion").hidden = !!c.suggestion;
    const s = c.suggestion;
    $("suggestion").replaceChildren(...(s ? [
      el("p", { className: "muted small" }, s.factor),
      el("p", { className: "question" }, s.question),
      el("dl", {}, el("dt", {}, "Or ask it this way"), el("dd", { className: "alternative" }, s.alternative),
        el("dt", {}, "A strong answer"), el("dd", { className: "strong" }, s.strongAnswer))] : []));
  }
  if (changedPart("evaluations", c.evaluations)) {
    $("evaluations").replaceChildren(...c.evaluations.map((e) => el("li", { dataset: { turn: e.turn } },
      el("span", { className: "score" }, e.score === null ? "–" : e.score + " / 100"), " · ", e.factor,
      el("div", { className: "muted small" }, e.reasoning || ""),
      e.flags.length ? el("div", { className: "small" }, "Flags: " + e.flags.join(", ")) : null)));
  }
  if (changedPart("turns", c.turns)) {
    $("transcript").replaceChildren(...c.turns.map((t) => el("li", { className: "turn " + t.role },
      el("span", { className: "timestamp" }, clock(t.startMs)),
      el("span", { className: "who" }, ROLE_NAMES[t.role] || t.role), el("span", { className: "text" }, t.text))));
  }
  if (c.notes && !$("notes-input").value && document.activeElement !== $("notes-input")) {
    $("notes-input").value = c.notes.text; // notes written earlier (a reload)
  }
}

async function saveNotes() {
  const response = await fetch("/admin/api/interviews/" + encodeURIComponent(interviewId) + "/notes", {
    method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: $("notes-input").value }) });
  $("notes-saved").textContent = response.ok ? "Saved " + new Date().toLocaleTimeString() : "Not saved — try again";
}

async function handOver() {
  $("handover").disabled = true;
  const response = await fetch("/admin/api/interviews/" + encodeURIComponent(interviewId) + "/handover",
    { method: "POST" });
  if (!response.ok) {
    $("handover").disabled = false;
    const body = await response.json().catch(() => ({}));
    $("call-error").textContent = body.error ? body.error.message : "The AI could not take over.";
    return;
  }
  setCallState("ai"); // your microphone no longer reaches the candidate
}

function hangUp() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "hangup" }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("hangup").addEventListener("click", hangUp);
  $("handover").addEventListener("click", handOver);
  $("notes-input").addEventListener("input", () => {
    clearTimeout(notesTimer);
    $("notes-saved").textContent = "Saving…";
    notesTimer = setTimeout(saveNotes, NOTES_DELAY_MS);
  });
  loadPicker();
});
