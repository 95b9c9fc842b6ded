"""Queue load: N queued players, each a real websocket client with its own logged-in session.

Starts the web tier as deploy/ runs it (gunicorn, --web-workers uvicorn workers) on PostgreSQL
and Redis, gives N players their own accounts and session cookies, queues them behind a worker
whose two slots are taken, and opens every player's queue socket, which heartbeats as the page
does. Every --period seconds the line moves, alternately because the player at the front
leaves (through their own socket) and because a session ends and its slot is offered to the
front; a new player joins at the back so the line stays N long. Each client notes when its page
first shows its new place. Printed per variant: update latency p50/p95/max over every (client,
change), updates that never came, tickets lost, sockets the server dropped, and the web tier's
CPU per change and per status message.

Variants (--variants snapshot,recompute): "recompute" serves the same app with every page
recomputing the whole line on every event and heartbeat (webapp/queue/snapshot.py's "before").

Usage: python bench/queue_load.py [--players 1000] [--minutes 10] [--period 5]
Uses its own database (reverie_bench on the local PostgreSQL) and Redis database 7 unless
BENCH_DATABASE_URL / BENCH_REDIS_URL say otherwise; both are emptied before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/reverie_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.update(
    DJANGO_SETTINGS_MODULE="webapp.settings", DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL
)
os.environ.setdefault("CACHE_URL", REDIS_URL.rsplit("/", 1)[0] + "/8")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from common import (  # noqa: E402
    cpu_seconds,
    ensure_postgres_database,
    logged_in_players,
    machine,
    placeholder_world,
    print_table,
    summary,
)
from django.conf import settings  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from webapp.accounts.models import User  # noqa: E402
from webapp.fleet import services as fleet  # noqa: E402
from webapp.fleet.models import GpuPool, Worker  # noqa: E402
from webapp.play import services as play  # noqa: E402
from webapp.play.models import PlaySession  # noqa: E402
from webapp.queue import services as queue  # noqa: E402
from webapp.queue.models import Ticket  # noqa: E402
from webapp.worlds.models import World  # noqa: E402

CONNECT_AT_ONCE = 50
# A leave that the leaver's own page has not seen after this long: the web tier cannot keep up,
# and the variant stops there (its figures so far are printed, marked as stalled).
STALL_SECONDS = 60


def create_database() -> None:
    """The bench's own PostgreSQL database, made once."""
    ensure_postgres_database(DATABASE_URL)
    call_command("migrate", verbosity=0)


def empty_everything() -> None:
    for model in (PlaySession, Ticket, Worker, World, GpuPool, Session):
        model.objects.all().delete()
    User.objects.filter(username__startswith="load").delete()
    for url in (REDIS_URL, os.environ["CACHE_URL"]):
        redis.Redis.from_url(url).flushdb()


@dataclass
class Fleet:
    pool: GpuPool
    world: World
    worker: Worker
    sessions: deque = field(default_factory=deque)


def make_fleet() -> Fleet:
    pool, world = placeholder_world("load", slots_per_worker=2)
    worker = fleet.register_worker(pool, 2)
    fleet.mark_ready(worker)
    return Fleet(pool, world, worker)


def seat(fleet_: Fleet, user: User) -> None:
    """Put a player on a slot: join, take the offer."""
    ticket = queue.join(user, fleet_.world)
    ticket.refresh_from_db()
    fleet_.sessions.append(play.confirm(ticket))


def keep_worker_alive(worker: Worker) -> None:
    Worker.objects.filter(pk=worker.pk).update(last_heartbeat=timezone.now())


class Tally:
    """What every client saw, keyed to the change that caused it."""

    def __init__(self) -> None:
        self.change = 0
        self.change_at = 0.0
        self.latencies: list[float] = []
        self.expected = 0
        self.statuses = 0
        self.closed: list[str] = []  # sockets the server closed, and why


class Player:
    """One queued player's page: its socket, heartbeats, and the place it shows."""

    def __init__(self, ticket: Ticket, cookie: str, tally: Tally) -> None:
        self.ticket = ticket
        self.cookie = cookie
        self.tally = tally
        self.position: int | None = None
        self.moved_for = -1
        self.socket = None
        self.connected = asyncio.Event()
        self.gone = asyncio.Event()  # the page showed the ticket out of the line
        self.task: asyncio.Task | None = None

    async def run(self, base: str) -> None:
        url = f"ws://{base}/ws/queue/{self.ticket.public_id}/"
        cookie = f"{settings.SESSION_COOKIE_NAME}={self.cookie}"
        async with connect(
            url,
            origin=f"http://{base}",
            additional_headers={"Cookie": cookie},
            open_timeout=60,
            ping_interval=None,  # as a browser: no client pings, so a busy server is not dropped
        ) as ws:
            self.socket = ws
            beats = asyncio.create_task(self.heartbeat(ws))
            try:
                async for raw in ws:
                    self.saw(json.loads(raw))
            except ConnectionClosed as exc:
                self.tally.closed.append(str(exc))
            finally:
                beats.cancel()

    def saw(self, message: dict) -> None:
        if message.get("type") != "status":
            return
        self.tally.statuses += 1
        position = message["position"]
        if position is not None and not self.connected.is_set():
            self.connected.set()
        if message["state"] not in ("waiting", "offered"):
            self.gone.set()
        moved = self.position is not None and position is not None and position < self.position
        if moved and self.moved_for != self.tally.change:
            self.moved_for = self.tally.change
            self.tally.latencies.append(time.monotonic() - self.tally.change_at)
        self.position = position

    async def heartbeat(self, ws) -> None:
        period = settings.QUEUE_HEARTBEAT_SECONDS
        await asyncio.sleep(period * (hash(self.cookie) % 1000) / 1000)
        while True:
            await ws.send(json.dumps({"type": "heartbeat"}))
            await asyncio.sleep(period)

    async def leave(self) -> None:
        await self.socket.send(json.dumps({"type": "leave"}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(variant: str, port: int, workers: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        QUEUE_LOAD_VARIANT=variant,
        WEB_CONCURRENCY=str(workers),
        DATABASE_CONN_MAX_AGE="60",  # as deploy/.env.example sets it
        BIND=f"127.0.0.1:{port}",
        PYTHONPATH=f"{REPO}:{REPO / 'bench'}",
        LOG_LEVEL="WARNING",
    )
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
        "--log-level", "warning", "queue_load_app:application",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)


async def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the web server did not listen on port {port}")


def end_oldest_session(fleet_: Fleet) -> None:
    """A player on a slot finishes; the freed slot is offered to the front of the line."""
    play.end_session(fleet_.sessions.popleft(), PlaySession.EndReason.LEFT)


def take_offer(fleet_: Fleet, ticket: Ticket) -> None:
    ticket.refresh_from_db()
    fleet_.sessions.append(play.confirm(ticket))


def line_in_database(pool: GpuPool) -> list[int]:
    from webapp.queue.ordering import queue_order

    return queue_order(pool)


@dataclass
class Result:
    variant: str
    players: int
    changes: int
    expected: int
    latencies: list[float]
    lost: int
    order_kept: bool
    cpu: float
    statuses: int
    seconds: float
    stalled: bool
    closed: int


async def connect_players(players: list[Player], base: str) -> None:
    for start in range(0, len(players), CONNECT_AT_ONCE):
        batch = players[start : start + CONNECT_AT_ONCE]
        for one in batch:
            one.task = asyncio.create_task(one.run(base))
        await asyncio.wait_for(asyncio.gather(*(one.connected.wait() for one in batch)), 120)


async def keep_alive(worker: Worker) -> None:
    while True:
        await sync_to_async(keep_worker_alive)(worker)
        await asyncio.sleep(2)


async def run_variant(
    variant: str, count: int, seconds: float, period: float, workers: int
) -> Result:
    await sync_to_async(empty_everything)()
    fleet_ = await sync_to_async(make_fleet)()
    for user, _ in await sync_to_async(logged_in_players)(2, 0):
        await sync_to_async(seat)(fleet_, user)
    changes_planned = int(seconds // period) + 1
    accounts = deque(await sync_to_async(logged_in_players)(count + changes_planned, 10))
    tally = Tally()
    line: deque[Player] = deque()
    for _ in range(count):
        user, cookie = accounts.popleft()
        line.append(Player(await sync_to_async(queue.join)(user, fleet_.world), cookie, tally))
    port = free_port()
    web = start_web(variant, port, workers)
    base = f"127.0.0.1:{port}"
    alive = asyncio.create_task(keep_alive(fleet_.worker))
    try:
        await wait_for_port(port)
        await connect_players(list(line), base)
        print(f"{variant}: {count} players connected", flush=True)
        cpu_start, statuses_start, started = cpu_seconds(web.pid), tally.statuses, time.monotonic()
        stalled = False
        while time.monotonic() - started < seconds:
            await asyncio.sleep(period)
            front = line.popleft()
            tally.change += 1
            tally.change_at = time.monotonic()
            tally.expected += len(line)
            if tally.change % 2:
                await front.leave()
                # The next change starts only once this one is done (the page says it left).
                try:
                    await asyncio.wait_for(front.gone.wait(), STALL_SECONDS)
                except TimeoutError:
                    stalled = True
                    break
            else:
                await sync_to_async(end_oldest_session)(fleet_)
                await sync_to_async(take_offer)(fleet_, front.ticket)
            front.task.cancel()
            user, cookie = accounts.popleft()
            joiner = Player(await sync_to_async(queue.join)(user, fleet_.world), cookie, tally)
            joiner.task = asyncio.create_task(joiner.run(base))
            line.append(joiner)
        await asyncio.sleep(period)  # the last change's updates land
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(web.pid) - cpu_start
        statuses = tally.statuses - statuses_start
        waiting = await sync_to_async(line_in_database)(fleet_.pool)
    finally:
        alive.cancel()
        for one in line:
            if one.task is not None:
                one.task.cancel()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=60)
    expected_ids = [one.ticket.id for one in line]
    return Result(
        variant=variant,
        players=count,
        changes=tally.change,
        expected=tally.expected,
        latencies=tally.latencies,
        lost=len(set(expected_ids) - set(waiting)),
        order_kept=waiting == expected_ids,
        cpu=cpu,
        statuses=statuses,
        seconds=elapsed,
        stalled=stalled,
        closed=len(tally.closed),
    )


def row(result: Result) -> list[object]:
    lat = result.latencies or [float("nan")]
    spread = summary(lat)
    return [
        result.variant + (" (stalled: a leave unseen for 60 s)" if result.stalled else ""),
        result.players,
        result.changes,
        f"{len(result.latencies)} / {result.expected}",
        f"{1000 * spread['median']:.0f} / {1000 * spread['p95']:.0f} / {1000 * max(lat):.0f}",
        result.lost,
        result.closed,
        "yes" if result.order_kept else "no",
        f"{100 * result.cpu / result.seconds:.0f} %",
        f"{1000 * result.cpu / max(1, result.changes):.0f}",
        f"{1e6 * result.cpu / max(1, result.statuses):.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=5.0, help="seconds between changes")
    parser.add_argument("--variants", default="snapshot")
    parser.add_argument(
        "--web-workers", type=int, default=2, help="gunicorn's uvicorn workers (one per core)"
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    if set(variants) - {"snapshot", "recompute"}:
        parser.error("--variants: snapshot and/or recompute")
    if args.players < 2 or args.period <= 0 or args.minutes <= 0 or args.web_workers < 1:
        parser.error("--players >= 2, --web-workers >= 1, --period and --minutes positive")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per player, both ends
    logging.getLogger("webapp").setLevel(logging.WARNING)
    create_database()
    print(machine(), flush=True)
    results = []
    try:
        for variant in variants:
            results.append(
                asyncio.run(
                    run_variant(
                        variant, args.players, 60 * args.minutes, args.period, args.web_workers
                    )
                )
            )
            print(row(results[-1]), flush=True)
    finally:
        empty_everything()
    print_table(
        [
            "variant", "players", "changes", "updates came / due", "latency p50 / p95 / max ms",
            "tickets lost", "sockets dropped", "order kept", "web CPU", "web CPU ms per change",
            "web CPU µs per status",
        ],
        [row(result) for result in results],
    )  # fmt: skip


if __name__ == "__main__":
    main()
