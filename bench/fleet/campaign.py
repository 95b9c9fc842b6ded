"""The fault campaign on the namespace fleet (bench/fleet/stack.py), scenario by scenario.

    kill-worker-host   a player plays through the TURN relay on one GPU worker host; every
                       process of that host is SIGKILLed; measured: seconds until the page says
                       "the worker was lost", seconds until it plays again (front of the queue,
                       on the other host), its fps there, and slots double-booked (0 expected)

    partition-worker-host
                       the same player, the host's link down for 30 s and then up: seconds
                       until told, the retired worker's exit once the link is back (its stale
                       session tasks with it), its replacement registering, double-booked slots

Usage: sudo .venv/bin/python bench/fleet/campaign.py [--scenarios kill-worker-host,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.fleet.stack import FleetStack, wait_until  # noqa: E402

SLOT_OF_SESSION = (
    "SELECT w.pid FROM fleet_worker w JOIN fleet_slot s ON s.worker_id = w.id "
    "JOIN play_playsession p ON s.session_id = p.id WHERE p.public_id = '{session}'"
)
# Double-booked: a slot reserved for an offer while a session still holds it, or a live session
# on a slot of a worker that was reaped (its player would be told twice or never).
DOUBLE_BOOKED = (
    "SELECT (SELECT count(*) FROM fleet_slot"
    "        WHERE ticket_id IS NOT NULL AND session_id IS NOT NULL)"
    " + (SELECT count(*) FROM fleet_slot s JOIN fleet_worker w ON s.worker_id = w.id"
    "    WHERE s.session_id IS NOT NULL AND w.state = 'lost')"
)


def start_player(stack: FleetStack, username: str, seconds: float):
    """A Chromium player on the client host that plays, then outlives the loss of its worker;
    returns the process (once it plays) and the host its session runs on."""
    script = str(Path(__file__).with_name("browser_player.py"))
    player = stack.client.popen(
        [sys.executable, script, "--url", stack.web_url(0), "--username", username,
         "--seconds", str(seconds), "--survive-kill"]
    )  # fmt: skip
    first = json.loads(player.stdout.readline())
    assert first == {"event": "playing"}, first
    session = stack.sql("SELECT public_id FROM play_playsession ORDER BY id DESC LIMIT 1")[0][0]
    pid = int(stack.sql(SLOT_OF_SESSION.format(session=session))[0][0])
    return player, stack.host_of_worker_pid(pid), pid


def player_result(player, since: float) -> dict:
    out, _ = player.communicate(timeout=240)
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "told after s": round(result["told_at"] - since, 1),
        "playing again after s": round(result["playing_again_at"] - since, 1),
        "fps before": round(result["fps"], 1),
        "fps after": round(result["fps_after"], 1),
        "path before": result["pair"]["local"],
        "path after": result["pair_after"]["local"],
    }


def kill_worker_host(stack: FleetStack, seconds: float = 5.0) -> dict:
    player, host, _ = start_player(stack, "unlucky", seconds)
    killed_at = time.time()
    stack.topology.kill_host(host)
    result = {"killed host": host.name, **player_result(player, killed_at)}
    result["double-booked slots"] = int(stack.sql(DOUBLE_BOOKED)[0][0])
    return result


def partition_worker_host(stack: FleetStack, seconds: float = 5.0, cut: float = 30.0) -> dict:
    """The host's link down for `cut` seconds, then up: reaped, its player told; back, its old
    worker finds itself retired and exits (its session tasks with it), and a new one registers."""
    player, host, old_pid = start_player(stack, "partitioned", seconds)
    cut_at = time.time()
    stack.topology.partition(host, "fleet")
    result = {"partitioned host": host.name, **player_result(player, cut_at)}
    time.sleep(max(0.0, cut - (time.time() - cut_at)))
    stack.topology.partition(host, "fleet", down=False)
    restored_at = time.time()
    wait_until(lambda: old_pid not in host.pids(), 60, "the retired worker's exit")
    result["old worker exited after s"] = round(time.time() - restored_at, 1)
    wait_until(lambda: bool(stack.worker_pids(host)), 120, "the host's new worker")
    result["new worker live after s"] = round(time.time() - restored_at, 1)
    result["live workers"] = stack.live_workers()
    result["double-booked slots"] = int(stack.sql(DOUBLE_BOOKED)[0][0])
    return result


SCENARIOS = {"kill-worker-host": kill_worker_host, "partition-worker-host": partition_worker_host}


def wait_for_workers(stack: FleetStack) -> None:
    wait_until(lambda: stack.live_workers() == 2, 120, "two live GPU workers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    names = args.scenarios.split(",")
    if set(names) - set(SCENARIOS):
        parser.error(f"--scenarios: choose from {', '.join(SCENARIOS)}")
    for name in names:
        stack = FleetStack()
        stack.up()
        try:
            wait_for_workers(stack)
            print(name, json.dumps(SCENARIOS[name](stack)), flush=True)
        finally:
            stack.down()
            print("logs in", stack.workdir, "; left behind:", stack.topology.leftovers() or "none")


if __name__ == "__main__":
    main()
