"""Players in headless Chromium, run on the fleet's client host: sign up, queue, play, and
report what the pages measured (JSON on stdout).

Run inside the client namespace (`ip netns exec ... python bench/fleet/browser_player.py`), so
every packet the browsers send goes to the edge network: the web tier and the TURN relay.

    (default)        one player: decoded fps over --seconds, and the ICE pair the video came
                     on (its local and remote candidate types; "relay" on the local side means
                     through TURN); --survive-kill then outlives the loss of its worker
    --players N      N players in one window of --seconds, each tapping D then A: decoded fps,
                     key-to-photon p50/p95 from the page's own acks, ICE pair, per player
    --through        --players N playing and --queued M waiting, for as long as the harness
                     needs: it sends "mark NAME", "reload", "leave" (the first player leaves)
                     and "report" lines on stdin; every tick (a tap) each page's decoded
                     frames, acked inputs, end screen and queue place are sampled, and
                     "report" prints the timeline

Usage: browser_player.py --url http://203.0.113.5:8000 --username NAME [--seconds 10]
       [--players N] [--through --queued M] [--survive-kill]
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bench.page_stats import close_window, percentile, reset, tap, tap_for  # noqa: E402
from tests.e2e.players import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    DECODED_JS,
    decoded_fps,
    queue_and_play,
    sign_up,
    start_playing,
    wait_for_video,
)

# The e2e flags, less loopback ICE: the client host's loopback reaches nothing worth pairing.
FLAGS = [flag for flag in CHROMIUM_FLAGS if flag != "--allow-loopback-in-peer-connection"]

SELECTED_PAIR_JS = """async () => {
  const report = await window.reverie.stream.pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  for (const s of byId.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = byId.get(s.selectedCandidatePairId);
      const local = byId.get(pair.localCandidateId), remote = byId.get(pair.remoteCandidateId);
      return {local: local.candidateType, remote: remote.candidateType,
              local_address: local.address, remote_address: remote.address};
    }
  }
  for (const s of byId.values()) {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      const local = byId.get(s.localCandidateId), remote = byId.get(s.remoteCandidateId);
      return {local: local.candidateType, remote: remote.candidateType,
              local_address: local.address, remote_address: remote.address};
    }
  }
  return null;
}"""


def outlive_a_killed_worker(page, seconds: float) -> dict:
    """Say we play, wait for the page to report the worker lost, take the front of the queue
    and play again; the times are wall clock, for the harness that kills the host."""
    print(json.dumps({"event": "playing"}), flush=True)
    expect(page.locator("#end-label")).to_have_text("the worker was lost", timeout=90_000)
    told_at = time.time()
    page.click("#rejoin-front")
    page.click("#confirm", timeout=60_000)
    wait_for_video(page, timeout=60_000)
    playing_again_at = time.time()
    start_playing(page)
    return {
        "told_at": told_at,
        "playing_again_at": playing_again_at,
        "session_after": page.url.rstrip("/").rsplit("/", 1)[-1],
        "fps_after": decoded_fps(page, seconds),
        "pair_after": page.evaluate(SELECTED_PAIR_JS),
    }


def launch(pw, stack: ExitStack):
    """A Chromium of its own (fresh profile, closed with `stack`); its one page."""
    profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="reverie-player-"))
    context = pw.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=FLAGS
    )
    stack.callback(context.close)
    return context.pages[0] if context.pages else context.new_page()


def leave(page) -> None:
    """Press the page's Leave (a session's or the queue's), so the slot or place frees now
    rather than after the disconnect grace; the playing screen covers the button."""
    button = page.locator("#leave")
    if button.count():
        with page.expect_navigation(timeout=10_000):
            button.dispatch_event("click")


def play(url: str, username: str, world: str, seconds: float, survive_kill: bool) -> dict:
    with sync_playwright() as pw, ExitStack() as stack:
        page = launch(pw, stack)
        sign_up(page, url, username)
        session = queue_and_play(page, world)
        start_playing(page)
        fps = decoded_fps(page, seconds)
        result = {"session": session, "fps": fps, "pair": page.evaluate(SELECTED_PAIR_JS)}
        if survive_kill:
            result.update(outlive_a_killed_worker(page, seconds))
        leave(page)
        return result


def players(pw, stack: ExitStack, url: str, username: str, count: int, world: str) -> list:
    """`count` Chromiums, each signed up as username-i, queued, confirmed and playing."""
    pages = []
    for index in range(count):
        page = launch(pw, stack)
        sign_up(page, url, f"{username}-{index}")
        queue_and_play(page, world)
        start_playing(page)
        pages.append(page)
    return pages


def play_together(url: str, username: str, count: int, world: str, seconds: float) -> dict:
    """`count` players in one window, every one tapping: what each page measured."""
    with sync_playwright() as pw, ExitStack() as stack:
        pages = players(pw, stack, url, username, count, world)
        pages[0].wait_for_timeout(2000)  # past the first keyframe and bitrate ramp
        start = reset(pages)
        tap_for(pages, seconds)
        measured = close_window(pages, start)
        pairs = [page.evaluate(SELECTED_PAIR_JS) for page in pages]
        for page in pages:
            leave(page)
        return {
            "players": [
                {
                    "session": page.url.rstrip("/").rsplit("/", 1)[-1],
                    "fps": fps,
                    "acks p50": percentile(snapshot["latencies"], 0.5),
                    "acks p95": percentile(snapshot["latencies"], 0.95),
                    "acked": len(snapshot["latencies"]),
                    "pair": pair,
                }
                for page, fps, snapshot, pair in zip(
                    pages, measured["fps"], measured["snapshots"], pairs, strict=True
                )
            ]
        }


A_PLACE = re.compile(r"^\d+$")  # the queue page's #position once it knows the ticket's place
# One tick's reading of a page: decoded frames (0 before video), inputs acked so far, the end
# screen's words if shown, and the queue place if it is a queue page.
TICK_JS = """async () => {
  const text = (id) => {
    const e = document.getElementById(id);
    return e ? e.textContent.trim() : null;
  };
  const shown = (id) => {
    const e = document.getElementById(id);
    return e && e.offsetParent !== null ? e.textContent.trim() : null;
  };
  const stats = window.reverie && window.reverie.stats;
  return { acked: stats ? stats.latencies.length : 0, ended: shown("end-label"),
           position: text("position"), gone: shown("gone-reason") };
}"""


def stdin_lines() -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            lines.put(line.strip())
        lines.put("report")  # the harness went away

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for_place(page, timeout: float) -> None:
    expect(page.locator("#position")).to_have_text(A_PLACE, timeout=timeout)


def join_queue(page, url: str, username: str, world: str) -> None:
    sign_up(page, url, username)
    page.click(f"text=Play {world}")
    wait_for_place(page, timeout=20_000)


def sample(page, kind: str) -> dict:
    reading = page.evaluate(TICK_JS)
    if kind == "playing":
        # A page that left (or whose session ended) has no stream left to ask.
        has_stream = page.evaluate("() => Boolean(window.reverie && window.reverie.stream)")
        reading["frames"] = page.evaluate(DECODED_JS)[0] if has_stream else None
    return reading


def reload(page, kind: str) -> None:
    page.reload()
    if kind == "playing":
        wait_for_video(page, timeout=30_000)
        start_playing(page)
    else:
        wait_for_place(page, timeout=30_000)


def play_through(url: str, username: str, count: int, queued: int, world: str) -> dict:
    """Players and queued pages held through whatever the harness does, sampled every tick;
    the harness drives it with "mark NAME", "reload", "leave" and "report" lines on stdin."""
    with sync_playwright() as pw, ExitStack() as stack:
        pages = [(page, "playing") for page in players(pw, stack, url, username, count, world)]
        for index in range(queued):
            page = launch(pw, stack)
            join_queue(page, url, f"{username}-q{index}", world)
            pages.append((page, "queued"))
        print(json.dumps({"event": "ready"}), flush=True)
        lines, marks, ticks, left = stdin_lines(), {}, [], []
        playing = [page for page, kind in pages if kind == "playing"]
        taps = 0
        while True:
            tap(playing, taps)
            taps += 1
            ticks.append({"t": time.time(), "pages": [sample(p, kind) for p, kind in pages]})
            command = None if lines.empty() else lines.get()
            if command == "report":
                break
            if command and command.startswith("mark "):
                marks[command[5:]] = time.time()
            elif command == "leave":
                gone = playing.pop(0)
                leave(gone)
                left.append(gone)
                marks["left"] = time.time()
            elif command == "reload":
                failed = []
                for index, (page, kind) in enumerate(pages):
                    try:
                        reload(page, kind)
                    except PlaywrightTimeout as exc:
                        failed.append({"page": index, "error": str(exc).splitlines()[0]})
                marks["reloaded"] = time.time()
                print(json.dumps({"event": "reloaded", "failed": failed}), flush=True)
        for page, _ in pages:
            if page not in left:
                leave(page)
        return {"kinds": [kind for _, kind in pages], "marks": marks, "ticks": ticks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--world", default="Coast")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--players", type=int, default=0, help="N players in one window")
    parser.add_argument("--queued", type=int, default=0, help="with --through: M queued pages")
    parser.add_argument(
        "--through", action="store_true", help="hold the pages until 'report' on stdin"
    )
    parser.add_argument(
        "--survive-kill",
        action="store_true",
        help='after playing, print {"event": "playing"}, wait to be told the worker was lost, '
        "take the front of the queue and play again",
    )
    args = parser.parse_args()
    if args.through:
        result = play_through(args.url, args.username, args.players, args.queued, args.world)
    elif args.players:
        result = play_together(args.url, args.username, args.players, args.world, args.seconds)
    else:
        result = play(args.url, args.username, args.world, args.seconds, args.survive_kill)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
