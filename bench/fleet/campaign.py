"""The fault campaign on the namespace fleet (bench/fleet/stack.py), scenario by scenario.

    players-across-hosts
                       four players (one per slot, two slots on each GPU worker host) play
                       through the load balancer and the TURN relay, tapping D then A: decoded
                       fps and key-to-photon p50/p95 (the page's own acks) per player, its host

    kill-web-host      two players playing and one waiting in a browser, and 20 queue pages held
                       as websocket clients, all through the load balancer onto one web host;
                       every process of that host SIGKILLed: how long video and input stall,
                       whether sessions end, places before and after, the pages' reconnects,
                       and a reload of every browser page onto the other host

    restart-data       two players playing (one per host) and 100 queue pages held; Redis is
                       restarted (empty, as deploy/ runs it), then PostgreSQL (fast shutdown):
                       how long each was down, when every queue page heard from the server
                       again, what the players' video and input did, tickets lost, order kept;
                       then a player leaves and the front of the queue must be offered the slot

    kill-worker-host   a player plays through the TURN relay on one GPU worker host; every
                       process of that host is SIGKILLed; measured: seconds until the page says
                       "the worker was lost", seconds until it plays again (front of the queue,
                       on the other host), its fps there, and slots double-booked (0 expected)

    partition-worker-host
                       the same player, the host's link down for 30 s and then up: seconds
                       until told, the retired worker's exit once the link is back (its stale
                       session tasks with it), its replacement registering, double-booked slots

Each scenario runs on a fresh fleet (one slot per GPU worker, two for players-across-hosts) and
prints one JSON line of figures; tests/fleet/ runs the quick subset on one shared fleet.

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

from bench.fleet.netns import Host  # noqa: E402
from bench.fleet.stack import WEB_PORT, FleetStack, wait_until  # noqa: E402

PLAYER = str(Path(__file__).with_name("browser_player.py"))
QUEUED = str(Path(__file__).with_name("queued_players.py"))
WORKER_OF_SESSION = (
    "SELECT w.pid FROM play_playsession p JOIN fleet_worker w ON p.worker_id = w.id"
    " WHERE p.public_id = '{session}'"
)
FREE_SLOTS = (
    "SELECT count(*) FROM fleet_slot s JOIN fleet_worker w ON s.worker_id = w.id"
    " WHERE w.state = 'ready' AND s.session_id IS NULL AND s.ticket_id IS NULL"
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
    in_line = "SELECT count(*) FROM queue_ticket WHERE state IN ('waiting', 'offered')"
    wait_until(lambda: stack.sql(in_line)[0][0] == "0", 60, "an empty queue")
    player = stack.client.popen(
        [sys.executable, PLAYER, "--url", stack.url, "--username", username,
         "--seconds", str(seconds), "--survive-kill"]
    )  # fmt: skip
    first = json.loads(player.stdout.readline())
    assert first == {"event": "playing"}, first
    session = stack.sql("SELECT public_id FROM play_playsession ORDER BY id DESC LIMIT 1")[0][0]
    pid = int(stack.sql(WORKER_OF_SESSION.format(session=session))[0][0])
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


# --- players across both worker hosts ------------------------------------------------------------


def players_across_hosts(stack: FleetStack, count: int = 4, seconds: float = 10.0) -> dict:
    out = stack.client.run(
        [sys.executable, PLAYER, "--url", stack.url, "--username", "together",
         "--players", str(count), "--seconds", str(seconds)],
        timeout=240 + seconds,
    )  # fmt: skip
    players = json.loads(out.strip().splitlines()[-1])["players"]
    for player in players:
        pid = int(stack.sql(WORKER_OF_SESSION.format(session=player["session"]))[0][0])
        host = stack.host_of_worker_pid(pid)
        player["host"] = host.name if host else None
        player["path"] = player.pop("pair")["local"]
        for key in ("fps", "acks p50", "acks p95"):
            player[key] = round(player[key], 1) if player[key] is not None else None
    return {"players": players}


# --- players held through a fault ------------------------------------------------------------


class ThroughPlayer:
    """browser_player.py --through on the client host: browsers playing and waiting, held
    while the harness does its worst, then their timeline."""

    def __init__(self, stack: FleetStack, username: str, playing: int, queued: int = 0) -> None:
        self.process = stack.client.popen(
            [sys.executable, PLAYER, "--url", stack.url, "--username", username, "--through",
             "--players", str(playing), "--queued", str(queued)],
            stdin=True,
        )  # fmt: skip
        expect_event(self.process, "ready")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def reload(self) -> list[dict]:
        """Every page reloaded; those that did not come back (no video, no place)."""
        self.send("reload")
        line = self.process.stdout.readline()
        reloaded = json.loads(line) if line else {}
        assert reloaded.get("event") == "reloaded", line
        return reloaded["failed"]

    def report(self) -> dict:
        self.send("report")
        out, _ = self.process.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


class QueueHolder:
    """`count` queue pages held as websocket clients on the client host (queued_players.py):
    accounts and tickets made on the control host, joined in order behind whoever plays."""

    def __init__(self, stack: FleetStack, count: int, prefix: str) -> None:
        made = stack.control.run(
            [sys.executable, QUEUED, "make", "--count", str(count), "--prefix", prefix],
            env=stack.env("fleet"),
            timeout=120,
        )
        players = stack.workdir / f"{prefix}.json"
        players.write_text(made)
        self.process = stack.client.popen(
            [sys.executable, QUEUED, "hold", "--url", stack.url, "--players", str(players)],
            stdin=True,
        )
        expect_event(self.process, "connected")

    def report(self) -> list[dict]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["players"]

    def heard_from_all_since(self, since: float) -> bool:
        return all((page["updated at"] or 0) > since for page in self.report())

    def stop(self) -> None:
        self.process.communicate("stop\n", timeout=30)


def expect_event(process, event: str) -> None:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the client process exited before {event!r}")
    assert json.loads(line) == {"event": event}, line


def experience(timeline: dict, since: float, until: float) -> list[dict]:
    """What each browser page lived through between `since` and `until`: for a player, the
    longest time with no new decoded frame, the inputs acked and any end screen; for a queued
    page, its place before and at the end, and whether it left the line."""
    ticks = [tick for tick in timeline["ticks"] if tick["t"] <= until]
    before = [tick for tick in ticks if tick["t"] < since]
    during = [tick for tick in ticks if tick["t"] >= since]
    pages = []
    for index, kind in enumerate(timeline["kinds"]):
        first = before[-1]["pages"][index] if before else during[0]["pages"][index]
        last = during[-1]["pages"][index]
        if kind == "queued":
            place = {"place before": first["position"], "place after": last["position"]}
            pages.append({"kind": kind, **place, "out of line": last["gone"]})
            continue
        stalled, last_new = 0.0, before[-1]["t"] if before else since
        frames, acked = first["frames"], 0
        for tick in during:
            now = tick["pages"][index]
            if now["frames"] is not None and (frames is None or now["frames"] != frames):
                stalled = max(stalled, tick["t"] - last_new)
                last_new = tick["t"]
            frames = now["frames"]
        stalled = max(stalled, during[-1]["t"] - last_new)
        acks = [tick["pages"][index]["acked"] for tick in [*before[-1:], *during]]
        # A reload starts the page's count again: add up the rises only.
        acked = sum(max(0, b - a) for a, b in zip(acks, acks[1:], strict=False))
        ends = [tick["pages"][index]["ended"] for tick in during if tick["pages"][index]["ended"]]
        pages.append(
            {"kind": kind, "video stalled s": round(stalled, 1), "inputs acked": acked,
             "ended": ends[0] if ends else None}
        )  # fmt: skip
    return pages


# --- a web host killed ----------------------------------------------------------------------------


def web_connections(web: Host) -> int:
    """Established connections to the web server on `web` (all come from the balancer)."""
    out = web.run(["ss", "-Htn", "state", "established", f"( sport = :{WEB_PORT} )"])
    return len(out.splitlines())


def fill_every_slot_with(stack: FleetStack, playing: int) -> None:
    """Wait until exactly `playing` slots are free (the last scenario's players gone), so the
    pages queued after them wait."""

    def free() -> int:
        return int(stack.sql(FREE_SLOTS)[0][0])

    wait_until(lambda: free() == playing, 60, f"{playing} free slots (now {free()})")


def kill_web_host(
    stack: FleetStack, playing: int = 2, queued: int = 1, held: int = 20, settle: float = 10.0
) -> dict:
    """Everything the client host has open goes through the balancer to one web host (haproxy
    balances by source address); that host is killed, and after `settle` seconds every
    browser page is reloaded."""
    fill_every_slot_with(stack, playing)
    player = ThroughPlayer(stack, "webkill", playing, queued)
    holder = QueueHolder(stack, held, "webkill-held")
    host = max(stack.webs, key=web_connections)
    result: dict = {"killed host": host.name, "its connections": web_connections(host)}
    places = [page["position"] for page in holder.report()]
    killed_at = time.time()
    player.send("mark killed")
    stack.topology.kill_host(host)
    result["held pages heard again after s"] = round(
        wait_until(lambda: holder.heard_from_all_since(killed_at), 90, "the held queue pages"),
        1,
    )
    time.sleep(max(0.0, settle - (time.time() - killed_at)))  # play on with one web host
    reload_at = time.time()
    result["pages not back after a reload"] = player.reload()
    result["reload took s"] = round(time.time() - reload_at, 1)
    time.sleep(5)
    after = holder.report()
    result["held places kept"] = [page["position"] for page in after] == places
    result["held tickets still waiting"] = sum(page["state"] == "waiting" for page in after)
    result["held reconnects"] = sum(page["reconnects"] for page in after)
    holder.stop()
    timeline = player.report()
    result["through the kill"] = experience(timeline, killed_at, reload_at)
    result["after the reload"] = experience(timeline, timeline["marks"]["reloaded"], time.time())
    result["ready through the balancer"] = stack.readiness(None)["status"]
    stack.start_web(host)
    return result


# --- Redis and PostgreSQL restarted -----------------------------------------------------------


def restart_data(
    stack: FleetStack, queued: int = 100, playing: int = 2, settle: float = 20.0
) -> dict:
    """Redis restarted, then PostgreSQL (each followed by `settle` seconds of play), with
    players on every slot and a full queue behind."""
    fill_every_slot_with(stack, playing)
    player = ThroughPlayer(stack, "steady", playing)
    holder = QueueHolder(stack, queued, "waiting")
    places = [page["position"] for page in holder.report()]
    waiting_sql = "SELECT public_id FROM queue_ticket WHERE state = 'waiting' ORDER BY id"
    line_before = [row[0] for row in stack.sql(waiting_sql)]
    result: dict = {"queued": len(line_before)}
    windows = []
    for name, restart in (("Redis", stack.restart_redis), ("PostgreSQL", stack.restart_postgres)):
        started = time.time()
        player.send(f"mark {name}")
        down = restart()
        back = started + down
        heard = wait_until(lambda back=back: holder.heard_from_all_since(back), 120, name)
        time.sleep(max(0.0, settle - (time.time() - started)))  # play on after it
        windows.append((name, started, time.time()))
        result[name] = {
            "down s": round(down, 1),
            "every queue page heard again after s": round(down + heard, 1),
            "ready through the balancer": stack.readiness(None)["status"],
        }
    reload_at = time.time()
    result["pages not back after a reload"] = player.reload()
    result["reload took s"] = round(time.time() - reload_at, 1)
    time.sleep(5)
    after = holder.report()
    in_line = ("waiting", "offered")
    result["tickets lost"] = len(line_before) - sum(page["state"] in in_line for page in after)
    result["places kept"] = [page["position"] for page in after] == places
    result["line kept in the database"] = [row[0] for row in stack.sql(waiting_sql)] == line_before
    result["queue page reconnects"] = sum(page["reconnects"] for page in after)
    left_at = time.time()
    player.send("leave")
    front = after[0]["ticket"]
    result["front offered after a leave s"] = round(
        wait_until(lambda: holder.report()[0]["state"] == "offered", 60, "the front's offer"), 1
    )
    assert holder.report()[0]["ticket"] == front
    holder.stop()
    timeline = player.report()
    for name, started, until in windows:
        result[name]["players"] = experience(timeline, started, until)
    result["after the reload"] = experience(timeline, timeline["marks"]["reloaded"], left_at)
    result["double-booked slots"] = int(stack.sql(DOUBLE_BOOKED)[0][0])
    # Celery control and beat ride both restarts out (beat re-takes its lock in Redis).
    result["control and beat still running"] = all(
        process.poll() is None for process in stack.control.processes
    )
    return result


SCENARIOS = {
    "players-across-hosts": players_across_hosts,
    "kill-web-host": kill_web_host,
    "restart-data": restart_data,
    "kill-worker-host": kill_worker_host,
    "partition-worker-host": partition_worker_host,
}
# The fleet each scenario runs on: slots per GPU worker (one each, so that two players fill it
# and a queue forms behind them).
SLOTS = {"players-across-hosts": 2}


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
        stack = FleetStack(worker_slots=SLOTS.get(name, 1))
        stack.up()
        try:
            wait_for_workers(stack)
            print(name, json.dumps(SCENARIOS[name](stack)), flush=True)
        finally:
            stack.down()
            print("logs in", stack.workdir, "; left behind:", stack.topology.leftovers() or "none")


if __name__ == "__main__":
    main()
