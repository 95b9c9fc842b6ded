"""The play websocket relays WebRTC signalling between the page and the owning worker only."""

import asyncio
from contextlib import asynccontextmanager

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.layers import get_channel_layer

from streaming.relay import worker_group
from tests.conftest import confirmed_session
from tests.webapp.test_consumers import communicator, receive_type
from webapp.play.models import PlaySession

pytestmark = pytest.mark.django_db(transaction=True)

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def mark_running(session):
    PlaySession.objects.filter(pk=session.pk).update(state=PlaySession.State.RUNNING)


@asynccontextmanager
async def play_page(world, owner, running=True):
    """A connected play page (status already read) and a channel listening as its worker."""
    session = await sync_to_async(confirmed_session)(world, owner)
    if running:
        await sync_to_async(mark_running)(session)
    layer = get_channel_layer()
    worker_channel = await layer.new_channel()
    group = worker_group(str(session.public_id))
    await layer.group_add(group, worker_channel)
    comm = await communicator(f"/ws/play/{session.public_id}/", owner)
    await comm.connect()
    try:
        await receive_type(comm, "status")
        yield comm, layer, worker_channel
    finally:
        await comm.disconnect()
        await layer.group_discard(group, worker_channel)


async def test_an_offer_reaches_the_worker_group_and_the_answer_comes_back_to_that_page(
    world, owner
):
    async with play_page(world, owner) as (comm, layer, worker_channel):
        await comm.send_json_to({"type": "offer", "sdp": OFFER + "a=x\r\n" * 1000, "offer_id": 3})
        relayed = await asyncio.wait_for(layer.receive(worker_channel), 5)
        assert relayed["type"] == "signal.offer" and relayed["sdp"].startswith(OFFER)
        assert relayed["offer_id"] == 3
        await layer.send(
            relayed["reply_to"],
            {"type": "session.signal", "signal": {"kind": "answer", "sdp": "v=0 a", "offer_id": 3}},
        )
        answer = await receive_type(comm, "signal")
        assert answer == {"type": "signal", "kind": "answer", "sdp": "v=0 a", "offer_id": 3}


async def test_an_offer_before_the_worker_runs_the_session_is_told_to_wait(world, owner):
    async with play_page(world, owner, running=False) as (comm, _, _):
        await comm.send_json_to({"type": "offer", "sdp": OFFER})
        reply = await receive_type(comm, "signal")
        assert reply["kind"] == "not_ready" and reply["state"] == "starting"


async def test_an_offer_without_sdp_or_too_large_gets_an_error_and_the_socket_stays_open(
    world, owner
):
    async with play_page(world, owner) as (comm, _, _):
        await comm.send_json_to({"type": "offer", "sdp": 7})
        assert "SDP" in (await receive_type(comm, "error"))["error"]
        await comm.send_json_to({"type": "offer", "sdp": OFFER + "x" * 40_000})
        assert "larger" in (await receive_type(comm, "error"))["error"]
        await comm.send_json_to({"type": "leave"})
        assert (await receive_type(comm, "ended"))["reason"] == "left"


async def test_a_page_offering_too_often_is_told_to_wait_and_only_one_offer_is_relayed(
    world, owner
):
    async with play_page(world, owner) as (comm, layer, worker_channel):
        await comm.send_json_to({"type": "offer", "sdp": OFFER, "offer_id": 1})
        await comm.send_json_to({"type": "offer", "sdp": OFFER, "offer_id": 2})
        refused = await receive_type(comm, "signal")
        assert refused["kind"] == "error" and refused["offer_id"] == 2
        assert (await asyncio.wait_for(layer.receive(worker_channel), 5))["offer_id"] == 1
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(worker_channel), 0.5)
        await comm.send_json_to({"type": "offer", "sdp": OFFER, "offer_id": "x"})
        assert "offer_id" in (await receive_type(comm, "error"))["error"]


async def test_input_and_heartbeats_no_longer_go_over_the_websocket(world, owner):
    async with play_page(world, owner, running=False) as (comm, _, _):
        await comm.send_json_to({"type": "input"})
        assert "message type" in (await receive_type(comm, "error"))["error"]
