"""One player in headless Chromium, run on the fleet's client host: sign up, queue, play, and
report what the page measured (JSON on stdout).

Run inside the client namespace (`ip netns exec ... python bench/fleet/browser_player.py`), so
every packet the browser sends goes to the edge network: the web host and the TURN relay.
Reported: decoded fps over --seconds of play, and the ICE pair the video arrived on (its local
and remote candidate types; "relay" on the local side means through TURN).

Usage: browser_player.py --url http://203.0.113.11:8000 --username NAME [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.players import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
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


def play(url: str, username: str, world: str, seconds: float, survive_kill: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="reverie-player-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            sign_up(page, url, username)
            session = queue_and_play(page, world)
            start_playing(page)
            fps = decoded_fps(page, seconds)
            result = {"session": session, "fps": fps, "pair": page.evaluate(SELECTED_PAIR_JS)}
            if survive_kill:
                result.update(outlive_a_killed_worker(page, seconds))
            return result
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--world", default="Coast")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--survive-kill",
        action="store_true",
        help='after playing, print {"event": "playing"}, wait to be told the worker was lost, '
        "take the front of the queue and play again",
    )
    args = parser.parse_args()
    result = play(args.url, args.username, args.world, args.seconds, args.survive_kill)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
