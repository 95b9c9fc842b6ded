"""Queued players for the fleet campaign: accounts and tickets made on a fleet host, and their
queue pages held as real websocket clients on the client host.

    make --count N --world NAME      (a host that reaches the database, the fleet's environment)
        N accounts with a logged-in session each, joined to the world's queue in order; prints
        {"cookie": name, "players": [{"ticket": id, "session": key}, ...]} in join order
    hold --url URL --players FILE    (the client host: no database, no Django)
        each player's queue socket through the load balancer, as frontend/static/js/socket.js
        opens it: reconnects with backoff from 0.5 s to 8 s, a heartbeat every 5 s. Prints
        {"event": "connected"} once every page has its place; each "report" line on stdin
        prints every player's last place and state, its reconnects and when it last heard
        from the server; "stop" (or the end of stdin) leaves the queue on every page

The sockets are real and every player's session is its own; accounts and tickets are made in
the database only because hashing a password per log-in would take minutes on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

HEARTBEAT_SECONDS = 5.0


def make(count: int, world_name: str, prefix: str) -> dict:
    # Django only here: the client host that holds the pages has no database.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.conf import settings

    from bench.common import logged_in_players
    from webapp.queue import services as queue
    from webapp.worlds.models import World

    world = World.objects.get(name=world_name)
    players = [
        {"ticket": str(queue.join(user, world).public_id), "session": key}
        for user, key in logged_in_players(count, 0, prefix)
    ]
    return {"cookie": settings.SESSION_COOKIE_NAME, "players": players}


class QueuePage:
    """One player's queue page: its socket (reopened when it drops) and what it last showed."""

    def __init__(self, base: str, ticket: str, cookie: str) -> None:
        self.base, self.ticket, self.cookie = base, ticket, cookie
        self.position: int | None = None
        self.state: str | None = None
        self.updated = 0.0
        self.reconnects = -1  # the first connection is not a reconnect
        self.socket = None

    async def run(self) -> None:
        delay = 0.5
        while True:
            self.reconnects += 1
            try:
                async with connect(
                    f"ws://{self.base}/ws/queue/{self.ticket}/",
                    origin=f"http://{self.base}",
                    additional_headers={"Cookie": self.cookie},
                    open_timeout=20,
                    ping_interval=None,  # as a browser: no client pings
                ) as ws:
                    self.socket, delay = ws, 0.5
                    beats = asyncio.create_task(self.heartbeat(ws))
                    try:
                        async for raw in ws:
                            self.saw(json.loads(raw))
                    finally:
                        beats.cancel()
            except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
                pass  # dropped or refused: as the page does, try again after the backoff
            if self.state not in (None, "waiting", "offered"):
                return  # out of the line: the page stops reconnecting
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)

    async def leave(self) -> None:
        """As the page's Leave button: the place is given up now, not at the heartbeat timeout."""
        if self.socket is not None:
            try:
                await self.socket.send(json.dumps({"type": "leave"}))
            except ConnectionClosed:
                pass

    def saw(self, message: dict) -> None:
        if message.get("type") == "status":
            self.position, self.state = message.get("position"), message.get("state")
            self.updated = time.time()

    async def heartbeat(self, ws) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await ws.send(json.dumps({"type": "heartbeat"}))

    def report(self) -> dict:
        return {
            "ticket": self.ticket,
            "position": self.position,
            "state": self.state,
            "reconnects": self.reconnects,
            "updated at": self.updated or None,
        }


async def hold(base: str, made: dict) -> None:
    pages = [
        QueuePage(base, p["ticket"], f"{made['cookie']}={p['session']}") for p in made["players"]
    ]
    tasks = [asyncio.create_task(page.run()) for page in pages]
    while any(page.position is None for page in pages):
        await asyncio.sleep(0.2)
    print(json.dumps({"event": "connected"}), flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "report":
        print(json.dumps({"players": [page.report() for page in pages]}), flush=True)
    await asyncio.gather(*(page.leave() for page in pages))
    for _ in range(100):  # until every page shows its ticket out of the line, 20 s at most
        if all(page.state not in ("waiting", "offered") for page in pages):
            break
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    making = commands.add_parser("make")
    making.add_argument("--count", type=int, required=True)
    making.add_argument("--world", default="Coast")
    making.add_argument("--prefix", default="queued")
    holding = commands.add_parser("hold")
    holding.add_argument("--url", required=True, help="the site, e.g. http://203.0.113.5:8000")
    holding.add_argument("--players", type=Path, required=True, help="make's output")
    args = parser.parse_args()
    if args.command == "make":
        print(json.dumps(make(args.count, args.world, args.prefix)))
    else:
        made = json.loads(args.players.read_text())
        base = args.url.split("://", 1)[-1].rstrip("/")
        asyncio.run(hold(base, made))


if __name__ == "__main__":
    main()
