"""The video track's pacing: real generation times on a 90 kHz clock, a queue that never grows."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from streaming.tracks import FrameTrack, to_video_frame, video_scale


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def call(loop, coro):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(5)


def image(value: int = 0) -> np.ndarray:
    return np.full((64, 64, 3), value, dtype=np.uint8)


def wait_queued(track: FrameTrack, loop, count: int) -> None:
    async def settle():
        for _ in range(100):
            if len(track._queue) >= count:
                return
            await asyncio.sleep(0.001)

    call(loop, settle())


def test_pts_follow_real_generation_time_on_a_90_khz_clock(loop):
    track = FrameTrack(loop, scale=1)
    times = [100.0, 100.05, 100.1004, 100.2]  # a late frame, then a skipped one
    stamps = [track.push(image(), t) for t in times]
    assert stamps == [0, 4500, 9036, 18000]
    frames = [call(loop, track.recv()) for _ in range(2)]
    assert [f.pts for f in frames] == [9036, 18000]
    assert frames[0].time_base.denominator == 90_000


def test_frames_in_the_same_clock_tick_still_get_increasing_pts(loop):
    track = FrameTrack(loop)
    assert [track.push(image(), 5.0) for _ in range(3)] == [0, 1, 2]


def test_the_hand_off_queue_keeps_the_newest_frames_and_counts_the_dropped(loop):
    track = FrameTrack(loop, depth=2)
    for i in range(5):
        track.push(image(i * 40), 1.0 + i / 20)
    wait_queued(track, loop, 2)
    first, second = call(loop, track.recv()), call(loop, track.recv())
    assert (first.pts, second.pts) == (13500, 18000)
    assert track.dropped == 3 and track.sent == 2


def test_a_frame_is_reported_sent_when_the_sender_comes_back_and_dropped_ones_pass_on_acks(loop):
    track = FrameTrack(loop, depth=2)
    sent = []
    track.on_sent = lambda outgoing, taken, done: sent.append((outgoing, taken, done))
    for i in range(3):  # the first frame is dropped unsent: its ack rides on the second
        track.push(image(), 1.0 + i / 20, number=i + 1, ack=f"ack {i + 1}")
    wait_queued(track, loop, 2)
    call(loop, track.recv())
    assert sent == []  # taken by the encoder, not yet sent
    call(loop, track.recv())
    ((outgoing, taken, done),) = sent
    assert outgoing.number == 2 and outgoing.acks == ["ack 1", "ack 2"] and outgoing.pts == 4500
    assert outgoing.pushed_at <= taken <= done
    pending = asyncio.run_coroutine_threadsafe(track.recv(), loop)
    with pytest.raises(TimeoutError):
        pending.result(0.1)
    assert [o.number for o, _, _ in sent] == [2, 3]  # sent as the sender waits for more
    track.push(image(), 2.0)
    pending.result(2)


def test_recv_waits_for_the_device_loop_instead_of_inventing_frames(loop):
    track = FrameTrack(loop)
    pending = asyncio.run_coroutine_threadsafe(track.recv(), loop)
    with pytest.raises(TimeoutError):
        pending.result(0.2)
    track.push(image(), 2.0)
    assert pending.result(2).pts == 0


def test_a_stopped_track_ends_a_waiting_recv(loop):
    from aiortc.mediastreams import MediaStreamError

    track = FrameTrack(loop)
    pending = asyncio.run_coroutine_threadsafe(track.recv(), loop)
    loop.call_soon_threadsafe(track.stop)
    with pytest.raises(MediaStreamError):
        pending.result(2)


def test_small_pictures_are_scaled_by_whole_pixels_to_yuv420p():
    assert video_scale((64, 64), 256) == 4 and video_scale((360, 640), 256) == 1
    picture = np.zeros((3, 5, 3), dtype=np.uint8)
    picture[1, 2] = 255
    frame = to_video_frame(picture, scale=4)
    assert (frame.width, frame.height, frame.format.name) == (20, 12, "yuv420p")
    luma = frame.to_ndarray(format="rgb24")[..., 0]
    assert luma[4:8, 8:12].min() > 200 and luma[0:4, 0:4].max() < 30
