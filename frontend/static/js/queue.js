// The queue page: live position and offers over /ws/queue/, heartbeats to keep the place.
import { liveSocket } from "./socket.js";

const root = document.getElementById("queue");
const heartbeatMs = Number(root.dataset.heartbeat) * 1000;
const text = (id, value) => { document.getElementById(id).textContent = value; };
const REASONS = {
  left: "You left the queue.",
  expired: "You missed the confirm window.",
  dropped: "Your place was dropped because this page went away.",
  refused: "You have used today's play allowance.",
};
let offerDeadline = null;

function render(status) {
  root.dataset.state = status.state;
  if (status.play_url) { location.assign(status.play_url); return; }
  text("position", status.position ?? "-");
  text("waiting", status.waiting);
  text("capacity", status.capacity);
  text("estimate", status.estimated_wait === null ? "no capacity online"
    : `${Math.round(status.estimated_wait)} s`);
  offerDeadline = status.offer_seconds_left === null ? null
    : Date.now() + status.offer_seconds_left * 1000;
  if (REASONS[status.state]) text("gone-reason", REASONS[status.state]);
}

// The countdown is display only: the server decides when the offer expires.
setInterval(() => {
  if (offerDeadline !== null) {
    text("offer-left", Math.max(0, Math.round((offerDeadline - Date.now()) / 1000)));
  }
}, 250);

const socket = liveSocket(root.dataset.ws, (message) => {
  if (message.type === "status") render(message);
  if (message.type === "error") console.warn("queue socket:", message.error);
});
setInterval(() => socket.send({ type: "heartbeat" }), heartbeatMs);
text("live", "Updates live.");
