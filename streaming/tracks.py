"""The video track a session's peer sends: frames from the device loop, stamped on a 90 kHz clock.

The device loop produces frames on its own thread at the pool's frame rate; `push` hands each
one to the streaming loop through a queue of at most `depth` frames that drops the oldest, so a
slow encoder or network skips frames instead of building latency. The track never sleeps: the
device loop is the pace.

aiortc's sender asks for the next frame only once the previous one is encoded and its packets
are sent, so the moment `recv` is entered again is when the frame before went out: the track
then hands that frame to `on_sent` with its pick-up and send times, and the peer acknowledges
the input it carries. A dropped frame's acknowledgements pass to the frame after it, which
reflects the same input and more.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from streaming import metrics

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


def video_scale(frame_size: tuple[int, int], min_side: int) -> int:
    """Integer upscale that brings the short side to at least `min_side` (1 when already there).

    Small model pictures are scaled up by whole pixels before encoding: every model pixel then
    covers whole 2x2 chroma blocks of yuv420p, so colours do not bleed between neighbours.
    """
    return max(1, math.ceil(min_side / max(1, min(frame_size))))


def to_video_frame(image: np.ndarray, scale: int) -> VideoFrame:
    """uint8 (H,W,3) RGB -> yuv420p frame of (H*scale, W*scale), padded to even sides."""
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)  # (H*s,W*s,3)
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")  # even sides
    frame = VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(format="yuv420p")


@dataclass
class Outgoing:
    """A converted frame on its way to the encoder, with what to acknowledge once it is sent."""

    frame: VideoFrame
    pts: int = 0  # kept apart: the encoder may rewrite the frame's own once it has it
    number: int = 0
    pushed_at: float = 0.0  # time.time() once converted, on the device loop's thread
    acks: list[Any] = field(default_factory=list)


# (the frame, time.time() the encoder took it, time.time() its packets were sent)
SentHook = Callable[[Outgoing, float, float], None]


class FrameTrack(MediaStreamTrack):
    """A video track fed from another thread; pts is real generation time on a 90 kHz clock."""

    kind = "video"

    def __init__(
        self, loop: asyncio.AbstractEventLoop, scale: int = 1, depth: int = 2, label: str = ""
    ):
        super().__init__()
        self.label = label
        self.scale = scale
        self.dropped = 0
        self.sent = 0
        self._loop = loop
        self._queue: deque[Outgoing] = deque()
        self._depth = depth
        self.on_sent: SentHook | None = None
        self._in_flight: tuple[Outgoing, float] | None = None  # (frame, time.time() taken)
        self._ready = asyncio.Event()
        self._origin: float | None = None
        self._last_pts = -1

    def pts_for(self, generated_at: float) -> int:
        """90 kHz timestamp of a frame generated at `generated_at` (monotonic seconds)."""
        if self._origin is None:
            self._origin = generated_at
        pts = round((generated_at - self._origin) * VIDEO_CLOCK)
        # Two frames in the same clock tick still need increasing timestamps.
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        return pts

    def push(self, image: np.ndarray, generated_at: float, number: int = 0, ack: Any = None) -> int:
        """Queue a frame (any thread); returns its pts. `ack`, if given, reaches `on_sent`
        with the frame that carries it out."""
        frame = to_video_frame(image, self.scale)
        frame.pts = self.pts_for(generated_at)
        frame.time_base = VIDEO_TIME_BASE
        outgoing = Outgoing(frame, frame.pts, number, time.time(), [] if ack is None else [ack])
        loop = self._loop
        assert loop is not None  # set in __init__ (aiortc's base class types it optional)
        try:
            loop.call_soon_threadsafe(self._put, outgoing)
        except RuntimeError:  # the streaming loop already closed: the worker is stopping
            pass
        return frame.pts

    def _put(self, outgoing: Outgoing) -> None:
        while len(self._queue) >= self._depth:
            dropped = self._queue.popleft()
            self.dropped += 1
            (self._queue[0] if self._queue else outgoing).acks[:0] = dropped.acks
        self._queue.append(outgoing)
        self._ready.set()

    async def recv(self) -> VideoFrame:
        self._previous_sent()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.sent += 1
        outgoing = self._queue.popleft()
        self._in_flight = (outgoing, time.time())
        return outgoing.frame

    def _previous_sent(self) -> None:
        """The sender is back for a frame: the one it took last is encoded and sent."""
        if self._in_flight is None:
            return
        (outgoing, taken_at), self._in_flight = self._in_flight, None
        sent_at = time.time()
        metrics.frame_encoded(sent_at - taken_at)
        if outgoing.acks and self.on_sent is not None:
            try:
                self.on_sent(outgoing, taken_at, sent_at)
            except Exception:  # a failed ack costs a latency sample, never the video
                logger.exception("track %s: acknowledging a sent frame failed", self.label)

    def stop(self) -> None:
        super().stop()
        self._ready.set()  # wake a waiting recv so the sender sees the end
