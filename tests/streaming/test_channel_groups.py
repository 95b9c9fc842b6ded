"""Group memberships outlive a Redis restart: a Redis of the test's own is stopped and started
empty, as deploy/ runs it, and a message sent to the group afterwards still arrives."""

import asyncio
import shutil
import socket
import subprocess
import time

import pytest
from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from streaming import channel_groups

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    def __init__(self, directory, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path, free_tcp_port())
    server.start()
    yield server
    server.stop()


async def receive_within(layer, channel: str, seconds: float) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), seconds)
    except TimeoutError:
        return None


def restarted_group_delivery(own_redis, join) -> dict | None:
    """Join a group, restart Redis empty, send to the group for a while; what arrived."""

    async def scenario():
        layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{own_redis.port}/0"])
        channel = await layer.new_channel()
        await join(layer, "players", channel)
        await asyncio.sleep(channel_groups.WATCH_SECONDS + 0.5)  # the watcher knows this Redis
        own_redis.stop()
        own_redis.start()
        deadline = time.monotonic() + 3 * channel_groups.WATCH_SECONDS + 2
        got = None
        while got is None and time.monotonic() < deadline:
            try:
                await layer.group_send("players", {"type": "hello"})
                got = await receive_within(layer, channel, 0.5)
            except (OSError, RedisError):
                await asyncio.sleep(0.2)  # the layer's pool meets the restart: it reconnects
        if join is channel_groups.join:
            await channel_groups.leave(layer, "players", channel)
        await layer.flush()
        await layer.close_pools()
        return got

    return asyncio.run(scenario())


def test_a_group_joined_through_channel_groups_hears_after_redis_restarts(own_redis):
    assert restarted_group_delivery(own_redis, channel_groups.join) == {"type": "hello"}


def test_a_plain_group_add_is_lost_with_a_restarted_redis(own_redis):
    # What the module is for: without it the group is empty after the restart.
    async def plain_join(layer, group, channel):
        await layer.group_add(group, channel)

    assert restarted_group_delivery(own_redis, plain_join) is None


def test_leaving_forgets_the_membership_and_stops_the_watcher(own_redis):
    async def scenario():
        layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{own_redis.port}/0"])
        channel = await layer.new_channel()
        await channel_groups.join(layer, "players", channel)
        members = channel_groups._memberships()
        watcher = members.watcher
        await channel_groups.leave(layer, "players", channel)
        await asyncio.sleep(0)
        await layer.close_pools()
        return dict(members.joined), watcher.cancelled() or watcher.done()

    assert asyncio.run(scenario()) == ({}, True)
