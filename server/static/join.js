// The candidate's page: /join#TOKEN. The token stays in the fragment (never sent in a request) and goes to
// the server as the first WebSocket message. Protocol: see server/channels/web_channel.py.
"use strict";

const STATE_TEXT = {
  connecting: "Connecting…",
  speaking: "The interviewer is speaking",
  listening: "Listening — your turn to speak",
  ended: "The interview has ended",
};
const DRAIN_WAIT_MS = 15000; // at the end, let the last words play out, but not forever

const $ = (id) => document.getElementById(id);
let socket = null;
let audio = null; // {context, node, stream}
let live = false; // the server's session is running: microphone frames may flow
let finished = false;

function show(section) {
  for (const id of ["checking", "intro", "live", "ended", "refused"]) $(id).hidden = id !== section;
}

function refuse(title, message) {
  finished = true;
  $("refused-title").textContent = title;
  $("refused-message").textContent = message;
  show("refused");
  stopMicrophone();
}

function setState(state) {
  const box = $("state");
  box.dataset.state = state;
  box.textContent = STATE_TEXT[state] || state;
}

function finish(title, message) {
  if (finished) return;
  finished = true;
  live = false;
  setState("ended");
  $("ended-title").textContent = title;
  $("ended-message").textContent = message;
  // Let what the server already sent play to the end before the page says goodbye.
  const done = () => { stopMicrophone(); show("ended"); };
  if (!audio) { done(); return; }
  const timer = setTimeout(done, DRAIN_WAIT_MS);
  audio.onDrained = () => { clearTimeout(timer); done(); };
  audio.node.port.postMessage({ type: "flush" });
}

function stopMicrophone() {
  if (!audio) return;
  for (const track of audio.stream.getTracks()) track.stop();
  audio.context.close().catch(() => {});
  audio = null;
}

function socketUrl() {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/join";
}

function onControl(message) {
  switch (message.type) {
    case "ready":
      $("candidate-name").textContent = message.candidateName || "there";
      if (message.title) $("intro-title").textContent = message.title;
      show("intro");
      break;
    case "refused":
      refuse(message.reason === "expired" ? "This link has expired"
        : message.reason === "used" ? "This link has already been used"
        : "This link can't be used", message.message);
      break;
    case "state":
      if (message.state !== "connecting") live = true;
      setState(message.state);
      break;
    case "clear":
      if (audio) audio.node.port.postMessage({ type: "clear" });
      break;
    case "ended":
      finish("Thank you", "The interview has ended. Thank you for your time — you can close this page.");
      break;
    case "error":
      finish("The interview stopped", message.message || "Something went wrong. Please contact the recruiter.");
      break;
  }
}

function connect(token) {
  socket = new WebSocket(socketUrl());
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify({ type: "join", token }));
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      onControl(message);
    } else if (audio && !finished) {
      audio.node.port.postMessage({ type: "play", pcm: event.data }, [event.data]);
    }
  };
  socket.onclose = () => {
    if (finished) return;
    if ($("checking").hidden === false || $("intro").hidden === false) {
      refuse("Connection lost", "The page lost its connection to the server. Please reload it to try again.");
    } else {
      finish("Connection lost", "The connection dropped, so the interview has ended. What you said so far is saved.");
    }
  };
}

function showLevel(buffer) {
  const pcm = new Int16Array(buffer);
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
  const rms = Math.sqrt(sum / pcm.length) / 32768;
  $("level").style.width = Math.min(100, Math.round(rms * 400)) + "%";
}

async function start() {
  $("start").disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    $("start").disabled = false;
    refuse("The microphone is needed", "The interview needs your microphone. Allow it in your browser's " +
      "settings, then reload this page. (" + (error && error.name ? error.name : "no microphone") + ")");
    socket.close();
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/audio-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-bridge", { numberOfInputs: 1, numberOfOutputs: 1,
    outputChannelCount: [1] });
  context.createMediaStreamSource(stream).connect(node);
  node.connect(context.destination);
  audio = { context, node, stream, onDrained: null };
  node.port.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) {
      showLevel(event.data);
      if (live && !finished && socket.readyState === WebSocket.OPEN) socket.send(event.data);
    } else if (event.data.type === "drained" && audio && audio.onDrained) {
      audio.onDrained();
    }
  };
  await context.resume();
  setState("connecting");
  show("live");
  socket.send(JSON.stringify({ type: "start" }));
}

function leave() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "hangup" }));
  live = false;
  finished = true;
  stopMicrophone();
  $("ended-title").textContent = "You left the interview";
  $("ended-message").textContent = "What you said so far is saved. You can close this page.";
  show("ended");
  if (socket) socket.close();
}

document.addEventListener("DOMContentLoaded", () => {
  $("start").addEventListener("click", start);
  $("leave").addEventListener("click", leave);
  window.addEventListener("hashchange", () => location.reload()); // another link pasted into this tab
  const token = location.hash.slice(1);
  if (!token) {
    refuse("This link is incomplete", "Open the whole link from your invitation; the part after # is missing.");
    return;
  }
  connect(token);
});
