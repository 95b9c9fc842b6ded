"""Concurrent dispatchers: N processes race to hand the same slots to one long line.

A pool of --slots slots and a line of --dispatches waiting tickets on PostgreSQL. N dispatcher
processes start together and loop on `dispatch_pool` (the code every web and control process
runs). Whenever one of them makes an offer it checks, in a fresh query, that the offer holds:
exactly one slot reserved for that ticket and the ticket in "offered". It then plays the
player who leaves, which frees the slot for the next race. Double-booking would show as an
offer whose slot another dispatcher took (the check fails) or as a ticket offered twice.

Printed per N: offers made, offers that did not hold, tickets offered twice, tickets never
offered, offers per second.

Usage: python bench/dispatch_race.py [--dispatchers 1,4,8] [--dispatches 10000] [--slots 16]
Uses its own database (reverie_bench on the local PostgreSQL) unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/reverie_bench"
)
# The race needs no Redis: change events are sent on commit, and a failed send is only logged.
os.environ.update(
    DJANGO_SETTINGS_MODULE="webapp.settings",
    DATABASE_URL=DATABASE_URL,
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
    WORKER_TIMEOUT="86400",  # the bench's workers send no heartbeats; they stay live throughout
)

START_DELAY = 5.0  # seconds for every spawned process to import Django before the start


def race(pool_id: int, start_at: float, stop_after: int) -> list[tuple[int, bool]]:
    """One dispatcher process: (ticket pk, offer held) for each offer it made."""
    import logging

    import django

    django.setup()
    logging.getLogger("webapp").setLevel(logging.WARNING)
    from webapp.fleet.models import GpuPool, Slot
    from webapp.queue import services
    from webapp.queue.dispatch import dispatch_pool
    from webapp.queue.models import Ticket

    # A leave dispatches on commit too, and those offers would come back to nobody here: in
    # this harness only the racing loops dispatch.
    services.dispatch_pool = lambda pool: []
    pool = GpuPool.objects.get(pk=pool_id)
    time.sleep(max(0.0, start_at - time.time()))
    made: list[tuple[int, bool]] = []
    idle_rounds = 0
    while len(made) < stop_after and idle_rounds < 200:
        offers = dispatch_pool(pool)
        idle_rounds = 0 if offers else idle_rounds + 1
        for ticket in offers:
            reserved = Slot.objects.filter(ticket=ticket).count()
            still = Ticket.objects.filter(pk=ticket.pk, state=Ticket.State.OFFERED).exists()
            made.append((ticket.pk, reserved == 1 and still))
            services.leave(ticket)
        if not offers:
            time.sleep(0.001)
    return made


def setup(slots: int, tickets: int) -> int:
    """A fresh pool with `slots` ready slots and a line of `tickets`; returns the pool's pk."""
    from common import ensure_postgres_database, placeholder_world
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.utils import timezone

    from webapp.accounts.models import User
    from webapp.fleet import services as fleet
    from webapp.fleet.models import GpuPool, Worker
    from webapp.play.models import PlaySession
    from webapp.queue.models import Ticket
    from webapp.worlds.models import World

    ensure_postgres_database(DATABASE_URL)
    call_command("migrate", verbosity=0)
    for model in (PlaySession, Ticket, Worker, World, GpuPool):
        model.objects.all().delete()
    User.objects.filter(username__startswith="race").delete()
    pool, world = placeholder_world("race", slots_per_worker=2)
    for _ in range(slots // 2):
        fleet.mark_ready(fleet.register_worker(pool, 2))
    password = make_password("race")
    users = User.objects.bulk_create(
        User(username=f"race{n}", password=password) for n in range(tickets)
    )
    start = timezone.now()
    Ticket.objects.bulk_create(
        Ticket(user=user, world=world, pool=pool, created_at=start + timedelta(microseconds=n))
        for n, user in enumerate(users)
    )
    return pool.pk


def run(dispatchers: int, dispatches: int, slots: int) -> dict:
    from webapp.queue.models import Ticket

    pool_id = setup(slots, dispatches)
    share = -(-dispatches // dispatchers)
    start_at = time.time() + START_DELAY
    with ProcessPoolExecutor(dispatchers, mp_context=get_context("spawn")) as executor:
        futures = [executor.submit(race, pool_id, start_at, share) for _ in range(dispatchers)]
        results = [future.result(timeout=3600) for future in futures]
    elapsed = time.time() - start_at
    offers = [offer for made in results for offer in made]
    offered = [pk for pk, _ in offers]
    never = Ticket.objects.filter(pool_id=pool_id, offered_at__isnull=True).count()
    return {
        "dispatchers": dispatchers,
        "offers": len(offers),
        "did not hold": sum(1 for _, held in offers if not held),
        "offered twice": len(offered) - len(set(offered)),
        "never offered": never,
        "per dispatcher": "/".join(str(len(made)) for made in results),
        "seconds": round(elapsed, 1),
        "offers/s": round(len(offers) / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dispatchers", default="1,4,8", help="comma-separated process counts")
    parser.add_argument("--dispatches", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=16)
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.dispatchers.split(",")]
    except ValueError:
        parser.error("--dispatchers: comma-separated integers, e.g. 1,4,8")
    if min(counts) < 1 or args.dispatches < 1 or args.slots < 2 or args.slots % 2:
        parser.error("--dispatchers >= 1, --dispatches >= 1, --slots an even number >= 2")
    import django

    django.setup()
    import logging

    logging.getLogger("webapp").setLevel(logging.WARNING)
    from common import machine, print_table

    print(machine(), flush=True)
    rows = []
    for count in counts:
        rows.append(run(count, args.dispatches, args.slots))
        print(rows[-1], flush=True)
    print_table(list(rows[0]), [list(row.values()) for row in rows])


if __name__ == "__main__":
    main()
