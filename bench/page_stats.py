"""What a play page measures of itself (frontend/static/js/play-stats.js), read by the benches.

No Django here: the fleet's browser player runs this on a client host that has no database.
During a window every page taps D, then A (down TAP_MS, up TAP_MS), so the view moves and comes
back; the page times each change from key event to the presented frame that carries it
(key-to-photon by the worker's acks) and by picture.
"""

from __future__ import annotations

import time

TAP_MS = 250
TAP_KEYS = ("d", "a")

# One reading per page at each end of the window: the browser's inbound-rtp video counters,
# the frames the <video> element has presented (requestVideoFrameCallback), and when.
WINDOW_JS = """async () => {
  const stream = window.reverie.stream;
  const inbound = {};
  if (stream && stream.pc) {
    (await stream.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(inbound, s);
    });
  }
  return { inbound, presented: window.reverie.stats.presentedFrames, now: performance.now() };
}"""
SNAPSHOT_JS = """() => {
  const s = window.reverie.stats;
  return { ...s.snapshot(), hops: s.hops, intervalsMs: s.intervals, diffs: s.pictureDiffs,
    probed: s.probed, latencies: s.latencies, traces: s.traces };
}"""


def reset(pages) -> list[dict]:
    """Forget what the pages measured so far; the window's opening readings."""
    for page in pages:
        page.evaluate("() => window.reverie.stats.reset()")
    return [page.evaluate(WINDOW_JS) for page in pages]


def tap(pages, taps: int) -> None:
    """Tap number `taps` (D, then A, in turn) on every page: down TAP_MS, up TAP_MS."""
    key = TAP_KEYS[taps % len(TAP_KEYS)]
    for page in pages:
        page.keyboard.down(key)
    time.sleep(TAP_MS / 1000)
    for page in pages:
        page.keyboard.up(key)
    time.sleep(TAP_MS / 1000)


def tap_for(pages, seconds: float) -> None:
    """Every page taps D, then A, for `seconds` of wall time."""
    started, taps = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        tap(pages, taps)
        taps += 1


def close_window(pages, start: list[dict]) -> dict:
    """The window's closing readings, and once the last taps reach the screen, what every page
    measured: decoded and presented fps per page, snapshots, receiver counters."""
    end = [page.evaluate(WINDOW_JS) for page in pages]
    pages[0].wait_for_timeout(800)
    snapshots = [page.evaluate(SNAPSHOT_JS) for page in pages]
    windows = list(zip(start, end, strict=True))
    return {
        "fps": [rate(a, b, lambda r: r["inbound"].get("framesDecoded", 0)) for a, b in windows],
        "presented_fps": [rate(a, b, lambda r: r["presented"]) for a, b in windows],
        "snapshots": snapshots,
        "receivers": [receiver_delta(a["inbound"], b["inbound"]) for a, b in windows],
    }


def rate(before: dict, after: dict, count) -> float:
    """Frames a second between two WINDOW_JS readings, of the frames `count` reads."""
    return (count(after) - count(before)) / ((after["now"] - before["now"]) / 1000)


def receiver_delta(before: dict, after: dict) -> dict:
    """Per-frame jitter-buffer delay and decode time (ms) and frames dropped in the window,
    from the browser's own inbound-rtp counters."""

    def change(name: str) -> float:
        return float(after.get(name, 0) or 0) - float(before.get(name, 0) or 0)

    emitted = change("jitterBufferEmittedCount") or 1.0
    decoded = change("framesDecoded") or 1.0
    return {
        "jitter_ms": 1000 * change("jitterBufferDelay") / emitted,
        "decode_ms": 1000 * change("totalDecodeTime") / decoded,
        "dropped": int(change("framesDropped")),
    }


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]
