// Latency levers of the play page, on by default. bench/players.py turns single ones off (it
// sets window.reverieTuning before the page loads) to measure what each is worth.
export const tuning = {
  inputOnEvent: true,       // a key or button change is sent at once, not on the next 60 Hz tick
  jitterBufferTarget: 0,    // ms the receiver may buffer video; null leaves the browser's own
  ...(window.reverieTuning || {}),
};
