// The play page: WebRTC video from the worker, input back over the data channel, time left,
// idle warning, stats (F3) and the end screen. The server decides every limit.
import { liveSocket } from "./socket.js";
import { Input } from "./play-input.js";
import { Stats } from "./play-stats.js";
import { Stream } from "./play-rtc.js";

const root = document.getElementById("play");
const video = document.getElementById("video");
const screen = document.getElementById("screen");
const show = (id, visible) => { document.getElementById(id).hidden = !visible; };
const iceServers = JSON.parse(document.getElementById("ice-servers").textContent);
const stats = new Stats(video, document.getElementById("stats"));
let deadline = null;
let stream = null;
// Each key-to-photon time goes back to the worker too: its metrics show what players see.
stats.onPhoton = (ms) => {
  if (stream) stream.send({ v: 1, type: "photon", ms: Math.round(ms * 10) / 10 });
};

const LABELS = {
  Space: "Space", ShiftLeft: "Shift", ShiftRight: "Right Shift", ControlLeft: "Ctrl",
  ControlRight: "Right Ctrl", Escape: "Esc", Tab: "Tab", ArrowUp: "↑", ArrowDown: "↓",
  ArrowLeft: "←", ArrowRight: "→", Mouse0: "left click", Mouse1: "middle click",
  Mouse2: "right click", MouseMoveX: "mouse ←→", MouseMoveY: "mouse ↑↓",
};
const label = (code) => LABELS[code] || code.replace(/^(Key|Digit)/, "");

function renderControls(controls) {
  const list = document.getElementById("controls");
  list.replaceChildren(...controls.map(({ action, codes }) => {
    const item = document.createElement("li");
    const keys = document.createElement("kbd");
    keys.textContent = codes.map(label).join(" / ");
    item.append(keys, ` ${action}`);
    return item;
  }));
}

function activity() { show("idle-warning", false); }

const input = new Input(screen, {
  send: (message) => stream && stream.send(message),
  onPlaying: (playing) => {
    show("start", !playing && root.dataset.state === "running" && stream && !stream.closed);
    document.getElementById("start").textContent = "Click to resume";
  },
  onActivity: activity,
  onInput: (seq, at, sent) => stats.input(seq, at, sent),
  onPress: (at) => stats.press(at),
});

function setConnection(state) {
  root.dataset.peer = state;
  document.getElementById("connection").textContent =
    state === "connected" ? "" : `connection: ${state}`;
}

function startStream() {
  show("replaced", false);
  stream = new Stream({
    iceServers, video, stats, onControls: renderControls, onState: setConnection,
    onReplaced: replaced, signal: (message) => socket.send(message),
  });
  stream.start();
}

// Another tab (or browser) took the session; this page waits until the player takes it back.
function replaced() {
  input.pause();
  if (document.pointerLockElement) document.exitPointerLock();
  show("start", false);
  show("replaced", root.dataset.state === "running");
  setConnection("playing in another tab");
}

function ended(label, frontPass) {
  root.dataset.state = "ended";
  show("replaced", false);
  document.getElementById("end-label").textContent = label;
  show("ended", true);
  show("leave-form", false);
  show("start", false);
  show("starting", false);
  show("rejoin-front-form", frontPass);
  if (stream) stream.close();
  input.stop();
  socket.close();
}

const socket = liveSocket(root.dataset.ws, (message) => {
  switch (message.type) {
    case "status":
      root.dataset.state = message.state;
      if (message.state === "ended") { ended(message.end_label, message.front_pass); break; }
      deadline = message.seconds_left === null ? null : Date.now() + message.seconds_left * 1000;
      if (message.state === "running" && !stream) startStream();
      break;
    case "signal":
      if (stream) stream.onSignal(message);
      break;
    case "idle_warning":
      document.getElementById("idle-warning").textContent =
        `No input: the session ends in ${message.seconds} s`;
      show("idle-warning", true);
      break;
    case "ended":
      ended(message.label, message.front_pass);
      break;
  }
});

document.getElementById("take-back").addEventListener("click", () => {
  if (root.dataset.state === "running") startStream();
});
video.addEventListener("playing", () => {
  show("starting", false);
  if (!input.playing && root.dataset.state === "running" && stream && !stream.closed) show("start", true);
});
window.addEventListener("keydown", (e) => {
  if (e.code === "F3") { e.preventDefault(); stats.toggle(); }
});
// Round trips are measured on the data channel itself, once a second.
setInterval(() => { if (stream) stream.send({ v: 1, type: "ping", t: performance.now() }); }, 1000);
setInterval(() => {
  if (deadline === null) return;
  document.getElementById("time-left").textContent =
    Math.max(0, Math.round((deadline - Date.now()) / 1000));
}, 250);

window.reverie = { stats, input, get stream() { return stream; } };
