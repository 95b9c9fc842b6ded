"""Channel-layer group memberships that outlive a Redis restart.

channels_redis keeps groups in Redis, and deploy/ runs Redis with nothing kept across a restart
(the database is the source of truth). After one, every group is empty: open queue and play
pages stop hearing pushes, and a worker's session stops hearing the page's offers, so a reload
gets no video. So each process notes the groups it joined, per event loop, and a watcher in
that loop asks Redis for its run id every WATCH_SECONDS; when the id changes (a new Redis), it
joins them all again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import redis.asyncio
from channels_redis.utils import create_pool
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WATCH_SECONDS = 2.0


class Memberships:
    """The (group, channel) pairs one event loop joined, and the loop's Redis watcher."""

    def __init__(self) -> None:
        self.joined: Counter[tuple[str, str]] = Counter()
        self.watcher: asyncio.Task | None = None


_by_loop: dict[asyncio.AbstractEventLoop, Memberships] = {}


def _memberships() -> Memberships:
    loop = asyncio.get_running_loop()
    for other in [known for known in _by_loop if known.is_closed()]:
        del _by_loop[other]  # a test's or a finished thread's loop
    return _by_loop.setdefault(loop, Memberships())


async def join(layer, group: str, channel: str) -> None:
    """`layer.group_add`, remembered so that a restarted Redis gets it again."""
    await layer.group_add(group, channel)
    members = _memberships()
    members.joined[(group, channel)] += 1
    if is_redis(layer) and (members.watcher is None or members.watcher.done()):
        members.watcher = asyncio.ensure_future(_watch(layer, members))


async def leave(layer, group: str, channel: str) -> None:
    members = _memberships()
    members.joined[(group, channel)] -= 1
    if members.joined[(group, channel)] <= 0:
        del members.joined[(group, channel)]
    if not members.joined and members.watcher is not None:
        members.watcher.cancel()  # nothing to watch for; the next join starts another
    await layer.group_discard(group, channel)


def is_redis(layer) -> bool:
    """Whether the layer keeps its groups in Redis (the in-memory layer's groups live and die
    with the process)."""
    return type(layer).__name__ == "RedisChannelLayer"


async def _watch(layer, members: Memberships) -> None:
    # One client per Redis the layer shards over; any of them new means groups were lost.
    clients = [redis.asyncio.Redis(connection_pool=create_pool(host)) for host in layer.hosts]
    known: tuple | None = None
    try:
        while members.joined:
            run_ids = tuple([await _run_id(client) for client in clients])
            if None in run_ids:
                run_ids = known or run_ids  # one is down: its next answer tells
            elif known and run_ids != known and not await _rejoin(layer, members):
                run_ids = known  # not all back in: the next check tries again
            known = run_ids
            await asyncio.sleep(WATCH_SECONDS)
    finally:
        for client in clients:
            await client.aclose()


async def _run_id(client) -> str | None:
    try:
        return (await client.info("server"))["run_id"]
    except (RedisError, OSError):
        return None


async def _rejoin(layer, members: Memberships) -> bool:
    pairs = list(members.joined)
    for group, channel in pairs:
        try:
            await layer.group_add(group, channel)
        except (RedisError, OSError):
            logger.warning("re-joining %s after a Redis restart failed; next check retries", group)
            return False
    logger.info("Redis restarted: re-joined %d channel groups", len(pairs))
    return True
