// The placeholder play page: picture, time left, idle warning and the end screen.
import { liveSocket } from "./socket.js";

const root = document.getElementById("play");
const frame = document.getElementById("frame");
const show = (id, visible) => { document.getElementById(id).hidden = !visible; };
let deadline = null;

function ended(label, frontPass) {
  root.dataset.state = "ended";
  document.getElementById("end-label").textContent = label;
  show("ended", true);
  show("leave-form", false);
  show("rejoin-front-form", frontPass);
  socket.close();
}

const socket = liveSocket(root.dataset.ws, (message) => {
  switch (message.type) {
    case "status":
      root.dataset.state = message.state;
      if (message.state === "ended") { ended(message.end_label, message.front_pass); break; }
      deadline = message.seconds_left === null ? null : Date.now() + message.seconds_left * 1000;
      break;
    case "frame":
      frame.src = message.image;
      frame.dataset.number = message.frame;
      show("starting", false);
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

// Any input proves the player is there; the server decides when idle ends the session.
let lastSent = 0;
for (const kind of ["keydown", "mousedown", "mousemove", "wheel"]) {
  window.addEventListener(kind, () => {
    const now = Date.now();
    if (now - lastSent < 500) return;
    lastSent = now;
    show("idle-warning", false);
    socket.send({ type: "input" });
  });
}

setInterval(() => {
  if (deadline === null) return;
  document.getElementById("time-left").textContent =
    Math.max(0, Math.round((deadline - Date.now()) / 1000));
}, 250);
