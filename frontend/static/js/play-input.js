// Keyboard and mouse capture: held state plus movement since the last message. A key or button
// change goes out at once (tuning.inputOnEvent); a 60 Hz tick sends mouse movement and repeats
// the held state, which repairs a lost message on the unreliable channel.
import { tuning } from "./play-tuning.js";

const SEND_MS = 1000 / 60;
// Keys the browser would act on itself while playing (scrolling, quick find, ...).
const GAME_KEYS = /^(Key[A-Z]|Digit\d|Space|Shift(Left|Right)|Control(Left|Right)|Arrow\w+|Tab|Escape)$/;

export class Input {
  constructor(target, { send, onPlaying, onActivity, onInput, onPress }) {
    Object.assign(this, { target, send, onPlaying, onActivity, onInput, onPress });
    this.keys = new Set();
    this.buttons = new Set();
    this.dx = 0; this.dy = 0; this.wheel = 0;
    this.seq = 0;
    this.playing = false;
    this.locked = false;
    this.changedAt = null;   // event time of the first change since the last message
    this.releasePending = false;
    this.listen();
    this.timer = setInterval(() => this.tick(), SEND_MS);
  }

  listen() {
    const on = (el, kind, fn, options) => el.addEventListener(kind, fn, options);
    on(this.target, "click", () => this.play());
    on(document, "pointerlockchange", () => {
      const locked = document.pointerLockElement === this.target;
      if (this.locked && !locked) this.pause();  // Esc frees the mouse: input pauses, not the game
      this.locked = locked;
    });
    on(window, "keydown", (e) => {
      if (!this.playing || e.code === "F3") return;
      if (GAME_KEYS.test(e.code)) e.preventDefault();
      if (e.code === "Escape" && !this.locked) { this.pause(); return; }
      if (!this.keys.has(e.code)) { this.keys.add(e.code); this.pressed(e.timeStamp); }
    });
    on(window, "keyup", (e) => {
      if (this.keys.delete(e.code)) this.changed(e.timeStamp);
    });
    on(window, "mousemove", (e) => {
      if (!this.playing) return;
      this.dx += e.movementX || 0; this.dy += e.movementY || 0;
      this.onActivity();
    });
    on(this.target, "mousedown", (e) => {
      if (this.playing && !this.buttons.has(e.button)) {
        this.buttons.add(e.button); this.pressed(e.timeStamp);
      }
    });
    on(window, "mouseup", (e) => { if (this.buttons.delete(e.button)) this.changed(e.timeStamp); });
    on(this.target, "wheel", (e) => {
      if (!this.playing) return;
      e.preventDefault();
      this.wheel += Math.sign(e.deltaY); this.changed(e.timeStamp);
    }, { passive: false });
    on(this.target, "contextmenu", (e) => e.preventDefault());
    on(window, "blur", () => this.letGo());
  }

  play() {
    if (this.playing) return;
    this.playing = true;
    this.onPlaying(true);
    // Without pointer lock (refused, or a headless browser) the page keeps the keyboard anyway.
    try {
      const request = this.target.requestPointerLock();
      if (request && request.catch) request.catch(() => {});
    } catch { /* keyboard-only play */ }
  }

  pause() {
    this.playing = false;
    this.letGo();
    this.onPlaying(false);
  }

  letGo() {
    if (this.keys.size || this.buttons.size) {
      this.keys.clear(); this.buttons.clear();
      this.releasePending = true;  // before changed(): a paused page still sends the release
      this.changed();
    }
  }

  // A key or button went down: the stats time it to the first picture that changes.
  pressed(at) {
    if (this.onPress) this.onPress(at);
    this.changed(at);
  }

  // `at` is the event's own time stamp, so key-to-photon starts when the press happened.
  changed(at = performance.now()) {
    if (this.changedAt === null) this.changedAt = at;
    this.onActivity();
    if (tuning.inputOnEvent) this.tick();
  }

  tick() {
    if (!this.playing && !this.releasePending) return;
    this.releasePending = false;
    const message = {
      v: 1, type: "input", seq: ++this.seq, t: performance.now(),
      keys: [...this.keys], dx: this.dx, dy: this.dy, buttons: [...this.buttons], wheel: this.wheel,
    };
    this.dx = 0; this.dy = 0; this.wheel = 0;
    this.send(message);
    if (this.changedAt !== null) this.onInput(message.seq, this.changedAt, message.t);
    this.changedAt = null;
  }

  stop() {
    clearInterval(this.timer);
    this.playing = false;
    if (document.pointerLockElement === this.target) document.exitPointerLock();
  }
}
