"""The session runner with a real peer: data-channel input is presence, a lost peer ends it."""

import asyncio
import threading

import pytest
from django.db import close_old_connections

from streaming.protocol import encode_input
from tests.conftest import confirmed_session
from tests.streaming.client import ClientPeer
from webapp.fleet.models import Slot
from webapp.fleet.worker import WorkerProcess
from webapp.play import runner
from webapp.play.models import PlaySession
from webapp.play.services import record_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def process(pool, settings):
    settings.WEBRTC_HOST_ADDRESSES = ["127.0.0.1"]
    process = WorkerProcess(pool, 1, "inference.placeholder.PlaceholderRuntime")
    process.start()
    yield process
    process.stop()


def run_in_thread(session, process):
    result = {}

    def target():
        result["reason"] = runner.run(str(session.public_id), process)
        close_old_connections()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def start(world, owner, process, **pool_limits):
    type(world.pool).objects.filter(pk=world.pool.pk).update(**pool_limits)
    world.pool.refresh_from_db()
    session = confirmed_session(world, owner, worker=process.worker)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    for _ in range(100):  # the runner listens for offers once it has claimed the session
        session.refresh_from_db()
        if session.state == PlaySession.State.RUNNING:
            break
        thread.join(0.05)
    return session, thread, result


def test_input_on_the_data_channel_keeps_an_idle_limited_session_going(world, owner, process):
    session, thread, result = start(world, owner, process, idle_seconds=2,
                                    idle_warning_seconds=1, session_seconds=5)

    async def play():
        client = ClientPeer()
        await client.connect(str(session.public_id))
        for seq in range(1, 200):
            client.channel.send(encode_input(seq, float(seq), keys=["KeyD"] if seq % 2 else []))
            await asyncio.sleep(0.03)
            if not thread.is_alive():
                break
        await client.close()
        return client

    client = process.streaming.call(play(), timeout=30)
    thread.join(10)
    assert result["reason"] == PlaySession.EndReason.TIME_UP
    assert any(reply["type"] == "ack" for reply in client.replies)
    assert len(client.frames) > 40


def test_a_peer_that_goes_away_ends_the_session_after_the_grace_period(world, owner, process):
    session, thread, result = start(world, owner, process, disconnect_grace_seconds=1)

    async def connect_and_leave():
        client = ClientPeer()
        await client.connect(str(session.public_id))
        await asyncio.sleep(0.5)
        await client.close()

    process.streaming.call(connect_and_leave(), timeout=30)
    thread.join(10)
    session.refresh_from_db()
    assert result["reason"] == PlaySession.EndReason.DISCONNECTED
    assert not Slot.objects.filter(session=session).exists()
    assert process.streaming.peers == {}
    assert process.loop.session_count() == 0
