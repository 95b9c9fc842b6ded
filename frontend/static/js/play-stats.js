// Stats for the F3 overlay (and for tests and benchmarks via window.reverie.stats):
// decoded fps, data-channel round trip, key-to-photon p50/p95, bitrate, dropped frames.
//
// Key-to-photon: the worker acks each input seq with the frame (and its 90 kHz pts) that first
// reflects it. The RTP timestamp of a presented frame is that pts plus an offset the sender
// chose at random; the offset is found by voting over (presented rtp - acked pts) pairs, after
// which every ack maps to the first presented frame at or after its pts.
const KEEP = 240;

const percentile = (values, p) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
};

export class Stats {
  constructor(video, overlay) {
    Object.assign(this, { video, overlay });
    this.latencies = [];
    this.pendingInputs = new Map();  // seq -> time of the first change it carries
    this.waiting = [];               // {pts, since}: acked changes not yet seen on screen
    this.fps = 0; this.kbps = 0; this.rtt = null; this.dropped = 0; this.framesDecoded = 0;
    this.pc = null;
    this.last = null;
    setInterval(() => this.sample(), 1000);
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) this.watchFrames();
  }

  attach(pc) {
    this.pc = pc;
    this.last = null;
    this.origin = null;  // a new peer has a new random RTP offset
    this.presented = [];
    this.ackedPts = [];
    this.waiting = [];
  }

  input(seq, at) {
    this.pendingInputs.set(seq, at);
  }

  ack({ seq, pts }) {
    for (const [pending, since] of this.pendingInputs) {
      if (pending <= seq) { this.waiting.push({ pts, since }); this.pendingInputs.delete(pending); }
    }
    this.ackedPts.push(pts);
    if (this.ackedPts.length > KEEP) this.ackedPts.shift();
    this.resolve();
  }

  pong(t) { this.rtt = performance.now() - t; }

  watchFrames() {
    const onFrame = (now, meta) => {
      if (meta.rtpTimestamp !== undefined) {
        this.presented.push({ rtp: meta.rtpTimestamp >>> 0, at: meta.expectedDisplayTime || now });
        if (this.presented.length > KEEP) this.presented.shift();
        this.resolve();
      }
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.presented = [];
    this.video.requestVideoFrameCallback(onFrame);
  }

  findOrigin() {
    const votes = new Map();
    for (const pts of this.ackedPts.slice(-60)) {
      for (const frame of this.presented.slice(-60)) {
        const origin = (frame.rtp - pts) >>> 0;
        votes.set(origin, (votes.get(origin) || 0) + 1);
      }
    }
    const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1]);
    if (ranked.length && ranked[0][1] >= 4 && (ranked.length < 2 || ranked[0][1] > 2 * ranked[1][1])) {
      this.origin = ranked[0][0];
    }
  }

  resolve() {
    if (this.origin == null) this.findOrigin();
    if (this.origin == null) return;
    const now = performance.now();
    this.waiting = this.waiting.filter(({ pts, since }) => {
      const target = (this.origin + pts) >>> 0;
      const shown = this.presented.find((f) => ((f.rtp - target) | 0) >= 0 && f.at >= since);
      if (shown) {
        this.latencies.push(shown.at - since);
        if (this.latencies.length > 500) this.latencies.shift();
        return false;
      }
      return now - since < 3000;
    });
  }

  async sample() {
    if (!this.pc) return;
    let report;
    try { report = await this.pc.getStats(); } catch { return; }
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      if (this.last) {
        const seconds = (s.timestamp - this.last.timestamp) / 1000;
        this.fps = (s.framesDecoded - this.last.framesDecoded) / seconds;
        this.kbps = (8 * (s.bytesReceived - this.last.bytesReceived)) / seconds / 1000;
      }
      this.framesDecoded = s.framesDecoded;
      this.dropped = s.framesDropped || 0;
      this.last = s;
    });
    if (!this.overlay.hidden) this.overlay.textContent = this.text();
  }

  snapshot() {
    return {
      fps: this.fps, framesDecoded: this.framesDecoded, kbps: this.kbps, rtt: this.rtt,
      dropped: this.dropped, p50: percentile(this.latencies, 0.5),
      p95: percentile(this.latencies, 0.95), samples: this.latencies.length,
    };
  }

  text() {
    const s = this.snapshot();
    const ms = (v) => (v == null ? "-" : `${v.toFixed(0)} ms`);
    return [`decoded   ${s.fps.toFixed(1)} fps`, `bitrate   ${s.kbps.toFixed(0)} kbit/s`,
      `dropped   ${s.dropped}`, `round trip ${ms(s.rtt)}`,
      `key→photon p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  (${s.samples})`].join("\n");
  }

  toggle() {
    this.overlay.hidden = !this.overlay.hidden;
    if (!this.overlay.hidden) this.overlay.textContent = this.text();
  }
}
