// Helpers every dashboard page shares: building elements (text only, never HTML from data), times and
// durations, and the live connection (server-sent events) with its status line.
"use strict";

const STATUS_LABELS = {
  scheduled: "Scheduled", dialing: "Dialing", ringing: "Ringing", in_progress: "In progress",
  completed: "Completed", report_ready: "Report ready", failed: "Failed", no_answer: "No answer", busy: "Busy",
  declined: "Declined", cancelled: "Cancelled", expired: "Expired", partial: "Partial",
  withdrawn: "Withdrawn", no_response: "No response", callback_scheduled: "Callback scheduled",
  transferred: "Transferred",
};
const END_REASON_LABELS = {
  completed: "Answered every question", max_duration: "Reached the time limit", declined: "Said no to the recording",
  no_consent: "Gave no consent", stopped: "Asked to stop", no_response: "Stopped responding",
  callback_scheduled: "Asked to be called back", human_requested: "Asked for a person",
  transferred: "Handed to a recruiter", bad_line: "The line was broken", hung_up: "Hung up",
};
const CHANNEL_LABELS = { sip: "Phone (SIP)", twilio: "Phone (Twilio)", web: "Web" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function statusBadge(status) {
  return el("span", { className: "badge status-" + status }, STATUS_LABELS[status] || status);
}

function channelLabel(channel) {
  return CHANNEL_LABELS[channel] || channel;
}

function clock(ms) {
  // Media time in a call: m:ss.
  const total = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(total / 60) + ":" + String(total % 60).padStart(2, "0");
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const rest = clock((s % 3600) * 1000);
  return h ? h + ":" + rest.padStart(5, "0") : rest;
}

function localTime(iso) {
  if (!iso) return "–";
  const when = new Date(iso);
  return when.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit" });
}

// Server clock minus this browser's, from the last event, so durations tick on the server's time.
let clockOffsetMs = 0;
function serverNow() {
  return Date.now() + clockOffsetMs;
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function live(url, onData) {
  // Server-sent events: the server pushes a snapshot whenever something changes. EventSource reconnects
  // by itself; a 401 (logged out) or an explicit logout event sends the admin to the login page.
  const text = document.getElementById("live-text");
  const dot = document.getElementById("live-indicator");
  const source = new EventSource(url);
  source.onmessage = (event) => {
    const message = JSON.parse(event.data);
    clockOffsetMs = Date.parse(message.now) - Date.now();
    onData(message.data);
    dot.className = "dot on";
    text.textContent = "Live · updated " + new Date().toLocaleTimeString();
  };
  source.addEventListener("logout", () => { source.close(); location.assign("/admin/login"); });
  source.onerror = () => {
    dot.className = "dot off";
    if (source.readyState === EventSource.CLOSED) {
      text.textContent = "Disconnected — reload the page or log in again.";
      fetch("/admin/api/interviews?pageSize=1").then((r) => { if (r.status === 401) location.assign("/admin/login"); });
    } else {
      text.textContent = "Reconnecting…";
    }
  };
  return source;
}
