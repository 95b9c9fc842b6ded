"""The session runner with a real peer: data-channel input is presence, a lost peer ends it."""

import asyncio

import pytest

from streaming.protocol import encode_input
from tests.conftest import confirmed_session
from tests.streaming.client import ClientPeer
from tests.webapp.worker.conftest import wait_until_running
from webapp.fleet.models import Slot
from webapp.play.models import PlaySession
from webapp.play.services import record_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def start(world, owner, process, run_in_thread):
    """A running session on `process`, listening for offers; (session, thread, result)."""

    def start(**pool_limits):
        type(world.pool).objects.filter(pk=world.pool.pk).update(**pool_limits)
        world.pool.refresh_from_db()
        session = confirmed_session(world, owner, worker=process.worker)
        record_connection(session, True)
        thread, result = run_in_thread(session, process)
        wait_until_running(session, thread)  # the runner listens once it has claimed it
        return session, thread, result

    return start


def test_input_on_the_data_channel_keeps_an_idle_limited_session_going(process, start):
    session, thread, result = start(idle_seconds=2, idle_warning_seconds=1, session_seconds=5)

    async def play():
        client = ClientPeer()
        await client.connect(str(session.public_id))
        for seq in range(1, 200):
            # The runner closes the channel when time is up, maybe before the thread has ended.
            if client.channel.readyState != "open" or not thread.is_alive():
                break
            client.channel.send(encode_input(seq, float(seq), keys=["KeyD"] if seq % 2 else []))
            await asyncio.sleep(0.03)
        await client.close()
        return client

    client = process.streaming.call(play(), timeout=30)
    thread.join(10)
    assert result["reason"] == PlaySession.EndReason.TIME_UP
    assert any(reply["type"] == "ack" for reply in client.replies)
    assert len(client.frames) > 40


def test_a_peer_that_goes_away_ends_the_session_after_the_grace_period(process, start):
    session, thread, result = start(disconnect_grace_seconds=1)

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


def test_a_page_that_stops_talking_ends_the_session_after_the_grace_period(process, start):
    session, thread, result = start(disconnect_grace_seconds=1, idle_seconds=60)

    async def connect_and_fall_silent():
        client = ClientPeer()  # connected, but it never pings: like a frozen page
        await client.connect(str(session.public_id))
        for _ in range(300):
            if not thread.is_alive():
                break
            await asyncio.sleep(0.05)
        await client.close()

    process.streaming.call(connect_and_fall_silent(), timeout=30)
    thread.join(10)
    assert result["reason"] == PlaySession.EndReason.DISCONNECTED
