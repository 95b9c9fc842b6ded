// The play page's peer connection: offer over the play websocket, video in, input channel out.
import { tuning } from "./play-tuning.js";

const GATHER_MS = 3000;   // send the offer with what ICE found by then (host candidates are instant)
const ANSWER_MS = 6000;   // no answer by then: offer again (the worker may still be starting)

function gathered(pc, timeout) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeout);
  });
}

export class Stream {
  constructor({ iceServers, signal, video, stats, onControls, onState, onReplaced }) {
    Object.assign(this, { iceServers, signal, video, stats, onControls, onState, onReplaced });
    this.pc = null;
    this.channel = null;
    this.closed = false;
    this.timer = null;
    this.offerId = 0;  // answers to any other offer (an earlier retry) are ignored
  }

  async start() {
    this.stop();
    if (this.closed) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.answered = false;
    pc.addTransceiver("video", { direction: "recvonly" });
    // Input is latest-state: a late or lost message is worth nothing, so no ordering or resends.
    const channel = pc.createDataChannel("input", { ordered: false, maxRetransmits: 0 });
    this.channel = channel;
    channel.onmessage = (event) => this.received(event.data);
    pc.ontrack = (event) => {
      // Frames come at a steady pace on a good link: ask the receiver to buffer as little as it can.
      const target = tuning.jitterBufferTarget;
      if (target == null) { /* the browser's own choice */ }
      else if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = target;
      else event.receiver.playoutDelayHint = target / 1000;
      this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      this.onState(pc.connectionState);
      if (pc.connectionState === "failed") this.later(1000);
    };
    this.stats.attach(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    if (pc !== this.pc) return;
    this.offerId += 1;
    this.signal({ type: "offer", sdp: pc.localDescription.sdp, offer_id: this.offerId });
    this.onState("offered");
    this.later(ANSWER_MS, () => !this.answered);
  }

  later(ms, condition = () => true) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (!this.closed && condition()) this.start(); }, ms);
  }

  async onSignal(message) {
    const pc = this.pc;
    if (!pc || this.closed) return;
    if (message.kind === "replaced") {
      // Another tab took the session: stop offering, or the two would take it back and forth.
      this.close();
      this.onReplaced();
      return;
    }
    if (message.offer_id !== this.offerId) return;
    if (message.kind === "answer" && !this.answered) {
      this.answered = true;
      try {
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      } catch (error) {
        if (pc === this.pc) { this.onState(`error: ${error.message}`); this.later(1000); }
        return;
      }
      this.onControls(message.controls || []);
    } else if (message.kind === "not_ready") {
      this.later(1000);
    } else if (message.kind === "error") {
      this.onState(`error: ${message.error}`);
      this.later(3000);
    }
  }

  received(data) {
    let message;
    try { message = JSON.parse(data); } catch { return; }
    if (message.type === "ack") this.stats.ack(message);
    else if (message.type === "pong") this.stats.pong(message.t);
  }

  send(message) {
    if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify(message));
  }

  stop() {
    clearTimeout(this.timer);
    if (this.pc) this.pc.close();
    this.pc = null;
    this.channel = null;
  }

  close() {
    this.closed = true;
    this.stop();
  }
}
