"""One thread per worker steps every live session of the device together, at the frame rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inference.runtime import WorldRuntime

logger = logging.getLogger(__name__)

FrameSink = Callable[[np.ndarray, int], None]


@dataclass
class Feed:
    """A session as the loop sees it: the latest action in, frames out to its sink."""

    action: np.ndarray
    sinks: list[FrameSink] = field(default_factory=list)
    frames: int = 0
    error: str | None = None


class DeviceLoop:
    """Calls `runtime.step` for all sessions at once; sessions join or leave between frames."""

    def __init__(self, runtime: WorldRuntime, frame_rate: float):
        self.runtime = runtime
        self.period = 1.0 / frame_rate
        self._feeds: dict[str, Feed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def add(self, session_id: str, prompt_frames: np.ndarray) -> Feed:
        width = len(self.runtime.action_names)
        with self._lock:
            self.runtime.start(session_id, prompt_frames)
            feed = Feed(action=np.zeros(width, dtype=np.float32))
            self._feeds[session_id] = feed
        logger.info("session %s joined the device loop", session_id)
        return feed

    def remove(self, session_id: str) -> None:
        with self._lock:
            self._feeds.pop(session_id, None)
            self.runtime.stop(session_id)
        logger.info("session %s left the device loop", session_id)

    def set_action(self, session_id: str, action: np.ndarray) -> None:
        with self._lock:
            feed = self._feeds.get(session_id)
            if feed is not None:
                feed.action = action

    def session_count(self) -> int:
        with self._lock:
            return len(self._feeds)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            next_tick += self.period
            delay = next_tick - time.monotonic()
            if delay < 0:
                # Running late: skip the missed ticks rather than bursting to catch up.
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _tick(self) -> None:
        with self._lock:
            actions = {sid: feed.action for sid, feed in self._feeds.items() if feed.error is None}
            if not actions:
                return
            try:
                frames = self.runtime.step(actions)
            except Exception as exc:  # one bad step ends these sessions, not the worker
                logger.exception("runtime step failed for %s", sorted(actions))
                for sid in actions:
                    self._feeds[sid].error = repr(exc)
                return
            delivered = [(self._feeds[sid], frame) for sid, frame in frames.items()
                         if sid in self._feeds]
        for feed, frame in delivered:
            feed.frames += 1
            for sink in list(feed.sinks):
                sink(frame, feed.frames)
