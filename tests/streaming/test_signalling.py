"""The worker's signalling side without a browser: grace clock, offers in a burst, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer

from inference.placeholder import PlaceholderRuntime
from streaming import signalling
from streaming.peer import SessionPeer, StreamingLoop
from streaming.relay import worker_group
from streaming.signalling import SessionStream

# Parses as SDP but has no video section: answering it fails without touching the network.
NO_VIDEO = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class FakePeer:
    """Stands in for a connected SessionPeer where only the signalling is under test."""

    last_heard = None

    async def close(self) -> None:
        pass


def new_stream(streaming) -> SessionStream:
    return SessionStream(streaming, str(uuid.uuid4()), PlaceholderRuntime.action_space.bindings())


async def until(predicate, timeout: float = 5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


def test_offers_that_never_connect_do_not_restart_the_grace_clock(streaming):
    stream = new_stream(streaming)

    async def offer_twice():
        first = await stream._answer(NO_VIDEO)
        since = stream.unhealthy_since
        await asyncio.sleep(0.05)
        await stream._answer(NO_VIDEO)
        return first, since

    first, since = streaming.call(offer_twice())
    assert first["kind"] == "error"
    assert since is not None and stream.unhealthy_since == since
    assert stream.peer_gone_for() >= 0.05


def test_a_connected_peer_whose_page_went_silent_counts_as_gone(streaming):
    stream = new_stream(streaming)
    now = time.monotonic()
    stream.peer = SimpleNamespace(last_heard=now - 1)
    assert stream.peer_gone_for(now) == 0.0
    stream.peer = SimpleNamespace(last_heard=now - signalling.SILENCE_SECONDS - 2)
    assert stream.peer_gone_for(now) == pytest.approx(2.0)
    assert "disconnected" not in signalling.UNHEALTHY_STATES


def test_cancelling_an_answer_half_way_leaves_no_peer_behind(streaming, monkeypatch):
    stream = new_stream(streaming)
    started = asyncio.Event()

    async def stuck_answer(peer, sdp):
        peer.streaming.peers[peer.session_id] = peer
        started.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(SessionPeer, "answer", stuck_answer)

    async def cancel_mid_answer():
        task = asyncio.ensure_future(stream._answer(NO_VIDEO))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: not streaming.peers)

    streaming.call(cancel_mid_answer())
    assert streaming.peers == {} and stream.peer is None


def test_only_the_newest_of_waiting_offers_is_answered_and_each_reply_names_its_offer(
    streaming, monkeypatch
):
    stream = new_stream(streaming)
    answered = []

    async def fake_answer(sdp, reply_to=None):
        answered.append(reply_to)
        stream.peer, stream._peer_page = FakePeer(), reply_to
        return {"kind": "answer", "sdp": "v=0"}

    monkeypatch.setattr(stream, "_answer", fake_answer)

    async def burst():
        layer = InMemoryChannelLayer()
        pages = [await layer.new_channel() for _ in range(3)]
        stream._inbox.extend(
            {"type": "signal.offer", "sdp": NO_VIDEO, "reply_to": page, "offer_id": i}
            for i, page in enumerate(pages)
        )
        # Only the answering side runs, on a layer of this test's own: channels_redis binds
        # its locks to the first loop that receives, and each test here has a new loop.
        serving = asyncio.ensure_future(stream._serve(layer, asyncio.Event()))
        try:
            replies = [await asyncio.wait_for(layer.receive(page), 5) for page in pages]
        finally:
            serving.cancel()
        return pages, [r["signal"] for r in replies]

    pages, replies = streaming.call(burst(), timeout=20)
    assert answered == [pages[2]]
    assert [r["kind"] for r in replies] == ["replaced", "replaced", "answer"]
    assert [r["offer_id"] for r in replies] == [0, 1, 2]


def test_a_stream_closed_before_it_opened_never_joins_the_group(streaming):
    stream = new_stream(streaming)
    stream._closed = True

    async def open_then_send():
        await stream._open()
        layer = get_channel_layer()
        await layer.group_send(worker_group(stream.session_id), {"type": "signal.offer"})

    streaming.call(open_then_send())
    assert stream._channel is None and stream._tasks == []


def test_the_streaming_loop_refuses_work_when_stopped_and_cancels_work_it_gave_up_on(streaming):
    cancelled = threading.Event()

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        streaming.call(slow(), timeout=0.1)
    assert cancelled.wait(2)
    stopped = StreamingLoop()
    with pytest.raises(RuntimeError, match="not running"):
        stopped.call(asyncio.sleep(0))
