// Stats for the F3 overlay (and for tests and benchmarks via window.reverie.stats), measured
// from what the <video> element presents (requestVideoFrameCallback) wherever it can be:
// presented fps and frame intervals; key-to-photon by picture (a key press to the first
// presented frame whose picture changed) and by acks; decoded fps, bitrate, dropped frames,
// data-channel round trip; and each timed change's path hop by hop.
//
// Key-to-photon by acks: the worker acks each input seq with the frame (and its 90 kHz pts)
// that first reflects it. The RTP timestamp of a presented frame is that pts plus an offset the
// sender chose at random; the offset is found by voting over (presented rtp - acked pts) pairs,
// after which every ack maps to the first presented frame at or after its pts. An ack for a
// change carries the worker's timestamps of it (`hops`, Unix ms); with the presented frame's
// receive, decode and presentation times they give the hop table (same-clock hops are exact;
// the network hops assume the page and worker clocks agree, as on one machine).
//
// Key-to-photon by picture: every presented frame is shrunk to a THUMB x THUMB grey picture;
// a press is seen when a frame differs from the one on screen at the press by more than
// PICTURE_CHANGE (mean absolute grey level, 0-255), or by three times the recent frame-to-frame
// change if that is larger (a world that animates by itself). Measured with the default model
// (bench/players.py): idle frames differ by 0.1-0.8, a one-tile step by 1.2-4.4, at once on the
// frame that carries the press. A press that shows no such change within PROBE_MS counts as
// unseen (walking into water, say, changes next to nothing).
const KEEP = 240;
const KEEP_SAMPLES = 500;
const THUMB = 32;
const PICTURE_CHANGE = 1;
const PROBE_MS = 700;
const TICK_SLACK = 2;  // 90 kHz ticks an RTP timestamp may differ from its frame's pts

const percentile = (values, p) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
};

const keep = (list, value, size = KEEP_SAMPLES) => {
  list.push(value);
  if (list.length > size) list.shift();
};

export class Stats {
  constructor(video, overlay) {
    Object.assign(this, { video, overlay });
    this.pendingInputs = new Map();  // seq -> {since, sent}: a change waiting for its ack
    this.waiting = [];               // {pts, since, sent, hops}: acked, not yet seen on screen
    this.fps = 0; this.kbps = 0; this.rtt = null; this.dropped = 0; this.framesDecoded = 0;
    this.presentedFps = 0;
    this.pc = null;
    this.last = null;
    this.lastPresented = null;
    this.picture = null;
    this.thumb = document.createElement("canvas");
    this.thumb.width = this.thumb.height = THUMB;
    this.reset();
    setInterval(() => this.sample(), 1000);
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) this.watchFrames();
  }

  get presentedFrames() { return this.lastPresented ? this.lastPresented.count : 0; }

  // Forget the figures so far (a benchmark starts its window here).
  reset() {
    this.latencies = [];    // ms, key-to-photon by acks
    this.probed = [];       // ms, key-to-photon by picture
    this.unseen = 0;        // presses with no picture change within PROBE_MS
    this.probes = [];       // {at, reference}: presses waiting for a changed picture
    this.intervals = [];    // ms between presented frames
    this.pictureDiffs = []; // mean grey difference of each presented frame from the one before
    this.hops = [];         // per timed change: ms spent in each hop (see hopsOf)
    this.traces = [];       // per press: [ms after it, difference from the press's picture]
  }

  attach(pc) {
    this.pc = pc;
    this.last = null;
    this.origin = null;  // a new peer has a new random RTP offset
    this.presented = [];
    this.ackedPts = [];
    this.waiting = [];
  }

  input(seq, since, sent = since) {
    this.pendingInputs.set(seq, { since, sent });
  }

  press(at) {
    if (!this.picture) return;
    // The world's own motion: a low percentile, so the steps of a walk just ended do not count.
    const recent = percentile(this.pictureDiffs.slice(-10), 0.25) || 0;
    const threshold = Math.max(PICTURE_CHANGE, 3 * recent);
    this.probes.push({ at, reference: this.picture, threshold, trace: [] });
  }

  ack({ seq, pts, hops }) {
    for (const [pending, { since, sent }] of this.pendingInputs) {
      if (pending > seq) continue;
      const timed = hops && hops.changed === pending ? hops : null;
      this.waiting.push({ pts, since, sent, hops: timed });
      this.pendingInputs.delete(pending);
    }
    keep(this.ackedPts, pts, KEEP);
    this.resolve();
  }

  pong(t) { this.rtt = performance.now() - t; }

  watchFrames() {
    const onFrame = (now, meta) => {
      this.framePresented(now, meta);
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.presented = [];
    this.video.requestVideoFrameCallback(onFrame);
  }

  framePresented(now, meta) {
    const at = meta.expectedDisplayTime || now;
    if (this.lastPresented && meta.presentedFrames > this.lastPresented.count) {
      // A callback may miss a frame the compositor showed: share the gap between them.
      const frames = meta.presentedFrames - this.lastPresented.count;
      for (let i = 0; i < frames; i++) keep(this.intervals, (at - this.lastPresented.at) / frames);
    }
    this.lastPresented = { at, count: meta.presentedFrames };
    this.lookAtPicture(at);
    if (meta.rtpTimestamp !== undefined) {
      keep(this.presented, {
        rtp: meta.rtpTimestamp >>> 0, at, receive: meta.receiveTime,
        presentation: meta.presentationTime, decode: (meta.processingDuration || 0) * 1000,
      }, KEEP);
      this.resolve();
    }
  }

  lookAtPicture(at) {
    const g = this.thumb.getContext("2d", { willReadFrequently: true });
    g.drawImage(this.video, 0, 0, THUMB, THUMB);
    const data = g.getImageData(0, 0, THUMB, THUMB).data;
    const grey = new Float32Array(THUMB * THUMB);
    for (let i = 0; i < grey.length; i++) {
      grey[i] = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
    }
    if (this.picture) keep(this.pictureDiffs, difference(grey, this.picture));
    this.picture = grey;
    this.probes = this.probes.filter((probe) => {
      if (at <= probe.at) return true;
      const changed = difference(grey, probe.reference);
      probe.trace.push([at - probe.at, changed]);
      if (changed > probe.threshold) {
        keep(this.probed, at - probe.at);
        keep(this.traces, probe.trace, 100);
        return false;
      }
      if (at - probe.at > PROBE_MS) {
        this.unseen += 1;
        keep(this.traces, probe.trace, 100);
        return false;
      }
      return true;
    });
  }

  findOrigin() {
    // Every (presented rtp - acked pts) pair votes for an offset. The encoder rounds each pts
    // through its own time base, so the true offset comes out within TICK_SLACK ticks, not
    // exactly: votes count within that slack. The true offset pairs nearly every ack with a
    // frame, a wrong one only where two frame intervals happen to agree, so it must win by
    // far. Asked again every second (sample): an offset locked in too early is put right.
    const offsets = [];
    for (const pts of this.ackedPts.slice(-60)) {
      for (const frame of this.presented.slice(-60)) offsets.push((frame.rtp - pts) >>> 0);
    }
    offsets.sort((a, b) => a - b);
    let best = null; let bestVotes = 0; let secondVotes = 0;
    for (let i = 0, j = 0; i < offsets.length; i++) {
      while (offsets[i] - offsets[j] > 2 * TICK_SLACK) j++;
      const votes = i - j + 1;
      const centre = offsets[j + Math.floor((i - j) / 2)];
      if (votes > bestVotes) {
        if (best === null || Math.abs(centre - best) > 4 * TICK_SLACK) secondVotes = bestVotes;
        best = centre; bestVotes = votes;
      } else if (Math.abs(centre - best) > 4 * TICK_SLACK) {
        secondVotes = Math.max(secondVotes, votes);
      }
    }
    if (best !== null && bestVotes >= 8 && bestVotes >= 3 * secondVotes) this.origin = best;
  }

  resolve() {
    if (this.origin == null) this.findOrigin();
    if (this.origin == null) return;
    const now = performance.now();
    this.waiting = this.waiting.filter((change) => {
      const target = (this.origin + change.pts) >>> 0;
      const shown = this.presented.find(
        (f) => ((f.rtp - target) | 0) >= -TICK_SLACK && f.at >= change.since);
      if (shown) {
        keep(this.latencies, shown.at - change.since);
        if (this.onPhoton) this.onPhoton(shown.at - change.since);
        const exact = Math.abs((shown.rtp - target) | 0) <= TICK_SLACK;
        if (change.hops) keep(this.hops, hopsOf(change, shown, exact));
        return false;
      }
      return now - change.since < 3000;
    });
  }

  async sample() {
    if (!this.pc) return;
    if (this.presented.length) this.findOrigin();
    // Over the last 20 presented frames, and the wait since the last one (a stall reads low).
    const recent = this.intervals.slice(-20);
    const since = this.lastPresented ? performance.now() - this.lastPresented.at : 0;
    const span = recent.reduce((a, b) => a + b, 0) + Math.max(0, since);
    this.presentedFps = recent.length && span > 0 ? (1000 * recent.length) / span : 0;
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
      presentedFps: this.presentedFps, presentedFrames: this.presentedFrames,
      intervalP95: percentile(this.intervals, 0.95), intervals: this.intervals.length,
      probeP50: percentile(this.probed, 0.5), probeP95: percentile(this.probed, 0.95),
      probeSamples: this.probed.length, unseen: this.unseen,
    };
  }

  text() {
    const s = this.snapshot();
    const ms = (v) => (v == null ? "-" : `${v.toFixed(0)} ms`);
    return [
      `presented ${s.presentedFps.toFixed(1)} fps  interval p95 ${ms(s.intervalP95)}`,
      `decoded   ${s.fps.toFixed(1)} fps`,
      `key→photon (picture) p50 ${ms(s.probeP50)}  p95 ${ms(s.probeP95)}` +
        `  (${s.probeSamples}, ${s.unseen} unseen)`,
      `key→photon (acks)    p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  (${s.samples})`,
      `bitrate   ${s.kbps.toFixed(0)} kbit/s`, `dropped   ${s.dropped}`,
      `round trip ${ms(s.rtt)}`,
    ].join("\n");
  }

  toggle() {
    this.overlay.hidden = !this.overlay.hidden;
    if (!this.overlay.hidden) this.overlay.textContent = this.text();
  }
}

function difference(a, b) {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs(a[i] - b[i]);
  return total / a.length;
}

// Where one change's time went, in ms. Page clock: performance.now(); worker: Unix ms.
// `exact`: the frame that carried the change was presented; otherwise a newer one was shown
// first (two frames in one display refresh) and the frame hops are the newer frame's.
function hopsOf({ since, sent, hops }, shown, exact) {
  const unix = (t) => performance.timeOrigin + t;
  const hop = {
    input: sent - since,                       // key event to the message leaving the page
    uplink: hops.recv - unix(sent),            // data channel to the worker
    wait: hops.take - hops.recv,               // waiting for the next frame's step
    generate: hops.step - hops.take,           // the model's step
    convert: hops.push - hops.step,            // RGB to the encoder's YUV picture, queued
    queue: hops.encode - hops.push,            // waiting for the encoder
    encode: hops.sent - hops.encode,           // encode, packetise, send
    total: shown.at - since,
    exact,
  };
  if (shown.receive !== undefined && shown.presentation !== undefined) {
    hop.downlink = unix(shown.receive) - hops.sent;          // network to the last packet
    hop.buffer = shown.presentation - shown.receive - shown.decode;  // jitter buffer, queues
    hop.decode = shown.decode;
    hop.display = shown.at - shown.presentation;             // composited to on screen
  }
  return hop;
}
