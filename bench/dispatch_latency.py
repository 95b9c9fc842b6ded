"""Dispatch latency: from a slot freeing to the next player's page being asked to confirm.

Measures the real path: a session ends (database), the freed slot is claimed for the next
ticket, and the "offered" change event arrives through the Redis channel layer on the ticket's
group, where the player's websocket listens. Two variants run in one go:

  inline  dispatch runs on commit of the transaction that freed the slot (what Reverie does)
  beat    dispatch only by the periodic beat task (the backstop), for comparison

Usage: python bench/dispatch_latency.py [--trials 20] [--beat-trials 8]
Uses its own SQLite file (var/bench-dispatch.sqlite3) unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{REPO / 'var' / 'bench-dispatch.sqlite3'}")

import django  # noqa: E402

django.setup()

# All database work runs in asgiref's one sync thread, as it would in a single web process.
from asgiref.sync import sync_to_async  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from common import placeholder_world  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from webapp import notify  # noqa: E402
from webapp.accounts.models import User  # noqa: E402
from webapp.fleet import services as fleet  # noqa: E402
from webapp.fleet.models import GpuPool, Worker  # noqa: E402
from webapp.play import services as play  # noqa: E402
from webapp.play.models import PlaySession  # noqa: E402
from webapp.queue import dispatch, services  # noqa: E402
from webapp.queue.models import Ticket  # noqa: E402
from webapp.worlds.models import World  # noqa: E402

REAL_DISPATCH = dispatch.dispatch_pool


def setup_fleet():
    """A fresh pool with one single-slot worker and a world."""
    call_command("migrate", verbosity=0)
    PlaySession.objects.all().delete()
    Ticket.objects.all().delete()
    Worker.objects.all().delete()
    World.objects.filter(slug="bench").delete()
    GpuPool.objects.filter(slug="bench").delete()
    pool, world = placeholder_world("bench", slots_per_worker=1)
    worker = fleet.register_worker(pool, 1)
    fleet.mark_ready(worker)
    return pool, world, worker


def player(n: int) -> User:
    user, _ = User.objects.get_or_create(username=f"bench{n}")
    return user


def occupy_slot(world, n: int) -> PlaySession:
    """Put a player on the only slot, then queue the next one behind them."""
    Worker.objects.all().update(last_heartbeat=django.utils.timezone.now())
    ticket = services.join(player(n), world)
    REAL_DISPATCH(world.pool)  # the beat variant turns join's own dispatch off
    ticket.refresh_from_db()
    session = play.confirm(ticket)
    nxt = services.join(player(n + 1), world)
    return session, nxt


def end_and_clean(session):
    play.end_session(session, PlaySession.EndReason.LEFT)


class BeatOnly:
    """Turns inline dispatch off; a periodic task dispatches every `interval`, as beat does."""

    def __init__(self, interval: float):
        self.interval = interval

    async def __aenter__(self):
        dispatch.dispatch_pool = lambda pool: []
        self.task = asyncio.create_task(self._beat())
        return self

    async def _beat(self):
        while True:
            await asyncio.sleep(self.interval)
            await sync_to_async(_dispatch_everything)()

    async def __aexit__(self, *exc):
        self.task.cancel()
        dispatch.dispatch_pool = REAL_DISPATCH


def _dispatch_everything():
    for pool in GpuPool.objects.filter(enabled=True):
        REAL_DISPATCH(pool)
    close_old_connections()


async def one_trial(world, n: int, phase: float = 0.0) -> float:
    layer = get_channel_layer()
    session, nxt = await sync_to_async(occupy_slot)(world, n)
    channel = await layer.new_channel()
    await layer.group_add(notify.ticket_group(nxt.public_id), channel)
    # Slots free at random moments relative to the beat's ticks.
    await asyncio.sleep(random.uniform(0, phase))
    started = time.perf_counter()
    await sync_to_async(end_and_clean)(session)
    while True:
        message = await asyncio.wait_for(layer.receive(channel), timeout=30)
        if message["type"] == "ticket.changed" and message["change"] == "offered":
            latency = time.perf_counter() - started
            break
    await layer.group_discard(notify.ticket_group(nxt.public_id), channel)
    await sync_to_async(_leave)(nxt)
    return latency


def _leave(ticket):
    ticket.refresh_from_db()
    services.leave(ticket)
    for session in PlaySession.objects.filter(state__in=PlaySession.LIVE_STATES):
        play.end_session(session, PlaySession.EndReason.LEFT)


async def run_variant(world, trials: int, offset: int, phase: float = 0.0) -> list[float]:
    return [await one_trial(world, offset + 2 * i, phase) for i in range(trials)]


async def run_all(world, args) -> list[str]:
    # One event loop for both variants: the channel layer keeps per-loop receive state.
    rows = [summarise("inline", await run_variant(world, args.trials, 0))]
    if args.beat_trials:
        interval = settings.CELERY_BEAT_SCHEDULE["dispatch-all"]["schedule"]
        async with BeatOnly(interval):
            rows.append(
                summarise("beat", await run_variant(world, args.beat_trials, 1000, phase=interval))
            )
    return rows


def summarise(name: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return (
        f"| {name:<7} | {len(ms):>6} | {statistics.median(ms):>9.1f} | {p95:>8.1f} "
        f"| {ms[-1]:>8.1f} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--beat-trials", type=int, default=8)
    args = parser.parse_args()
    if args.trials < 1 or args.beat_trials < 0:
        parser.error("--trials must be >= 1 and --beat-trials >= 0")
    _, world, _ = setup_fleet()
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {db}, redis: {settings.REDIS_URL}, cpu cores: {os.cpu_count()}")
    rows = asyncio.run(run_all(world, args))
    print("| variant | trials | p50 (ms) | p95 (ms) | max (ms) |")
    print("|---------|--------|----------|----------|----------|")
    print("\n".join(rows))


if __name__ == "__main__":
    from common import run_with_own_redis

    run_with_own_redis(main)
