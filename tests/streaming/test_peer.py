"""Real aiortc peers on loopback: a player offers through the channel layer, the worker answers."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
from channels.layers import get_channel_layer

from inference.actions import ActionEncoder
from streaming.protocol import encode_input
from streaming.signalling import SessionStream
from tests.streaming.client import ClientPeer


def open_stream(streaming, device, prompt=None) -> SessionStream:
    session_id = str(uuid.uuid4())
    space = device.runtime.action_space
    stream = SessionStream(streaming, session_id, space.bindings(), scale=4)
    stream.open()
    if prompt is None:
        prompt = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    device.add(
        session_id,
        prompt,
        folder=stream.folder,
        encoder=ActionEncoder(space),
        sinks=(stream.on_frame,),
    )
    return stream


async def until(predicate, timeout: float = 10.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


def test_a_player_gets_video_and_an_ack_naming_the_frame_that_reflects_its_input(streaming, device):
    stream = open_stream(streaming, device)

    async def scenario():
        client = ClientPeer()
        answer = await client.connect(stream.session_id)
        await until(lambda: len(client.frames) >= 5)
        client.channel.send(encode_input(1, 100.0, keys=["KeyD"]))
        await until(lambda: any(r["type"] == "ack" for r in client.replies))
        await until(lambda: len(client.frames) >= 15)
        held = stream.folder.take().keys
        await client.close()
        await until(lambda: stream.peer.closed)
        return answer, client, held

    answer, client, held = streaming.call(scenario(), timeout=30)
    assert answer["kind"] == "answer"
    assert {"action": "right", "codes": ["KeyD", "ArrowRight"]} in answer["controls"]
    assert (client.frames[0].width, client.frames[0].height) == (256, 256)
    ack = next(r for r in client.replies if r["type"] == "ack")
    assert ack["seq"] == 1 and ack["frame"] > 1 and ack["pts"] > 0
    # The change is timed through the worker, hop by hop, in Unix ms.
    hops = ack["hops"]
    assert hops["changed"] == 1
    times = [hops[k] for k in ("recv", "take", "step", "push", "encode", "sent")]
    assert times == sorted(times) and times[-1] - times[0] < 1000, hops
    assert held == frozenset({"KeyD"})
    # Leaving lets go of every key, so nothing stays pressed for a reconnecting player.
    assert stream.folder.take().keys == frozenset()
    stream.close()


def test_the_answer_offers_only_loopback_candidates_in_loopback_mode(streaming, device):
    stream = open_stream(streaming, device)

    async def scenario():
        client = ClientPeer()
        answer = await client.connect(stream.session_id)
        await client.close()
        return answer

    answer = streaming.call(scenario(), timeout=30)
    candidates = [line for line in answer["sdp"].splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(line.split()[4] == "127.0.0.1" for line in candidates)
    stream.close()


def test_bad_messages_are_dropped_and_counted_and_the_session_goes_on(streaming, device):
    stream = open_stream(streaming, device)

    async def scenario():
        client = ClientPeer()
        await client.connect(stream.session_id)
        client.channel.send(encode_input(5, 1.0, keys=["KeyW"]))
        # Staleness is not tested here: the unordered channel may itself reorder messages
        # (see test_protocol for out-of-order input).
        for bad in ("not json", "x" * 5000, json.dumps({"v": 2, "type": "input", "seq": 9})):
            client.channel.send(bad)
        client.channel.send(json.dumps({"v": 1, "type": "ping", "t": 42.5}))
        await until(lambda: any(r["type"] == "pong" for r in client.replies))
        held = stream.folder.take().keys
        await client.close()
        return client, held

    client, held = streaming.call(scenario(), timeout=30)
    assert {"type": "pong", "v": 1, "t": 42.5} in client.replies
    assert stream.folder.dropped == {"malformed": 2, "oversized": 1}
    assert held == frozenset({"KeyW"})
    stream.close()


def test_a_new_offer_replaces_the_peer_tells_the_old_page_and_the_session_carries_on(
    streaming, device
):
    stream = open_stream(streaming, device)

    async def scenario():
        first = ClientPeer()
        await first.connect(stream.session_id)
        await until(lambda: len(first.frames) >= 3)
        first.channel.send(encode_input(500, 1.0, keys=["KeyW"]))
        await until(lambda: any(r["type"] == "ack" for r in first.replies))
        old_peer = stream.peer
        second = ClientPeer()
        await second.connect(stream.session_id)
        told = await asyncio.wait_for(get_channel_layer().receive(first.reply_to), 10)
        await until(lambda: len(second.frames) >= 3)
        # The new page counts from seq 1 again, and its input must not be dropped as stale.
        second.channel.send(encode_input(1, 1.0, keys=["KeyD"]))
        await until(lambda: any(r["type"] == "ack" for r in second.replies))
        await first.close()
        await second.close()
        return old_peer, told["signal"]

    old_peer, told = streaming.call(scenario(), timeout=30)
    assert told["kind"] == "replaced"
    assert old_peer.closed and stream.peer is not old_peer
    assert "stale" not in stream.folder.dropped
    stream.close()
    assert stream.peer.closed and streaming.peers == {}


def test_an_offer_without_video_gets_an_error_reply(streaming, device):
    stream = open_stream(streaming, device)

    async def scenario():
        from aiortc import RTCConfiguration, RTCPeerConnection
        from channels.layers import get_channel_layer

        from streaming.relay import worker_group

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: loopback only
        pc.createDataChannel("input")
        await pc.setLocalDescription(await pc.createOffer())
        layer = get_channel_layer()
        reply_to = await layer.new_channel()
        await layer.group_send(
            worker_group(stream.session_id),
            {"type": "signal.offer", "sdp": pc.localDescription.sdp, "reply_to": reply_to},
        )
        reply = await asyncio.wait_for(layer.receive(reply_to), 10)
        await pc.close()
        return reply["signal"]

    signal = streaming.call(scenario(), timeout=30)
    assert signal["kind"] == "error" and "no video" in signal["error"]
    assert stream.peer is None
    stream.close()
