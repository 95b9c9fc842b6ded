"""One thread per worker steps every live session of the device together, at the frame rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inference.runtime import WorldRuntime
from streaming.controls import Controls
from streaming.protocol import InputFolder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameInfo:
    """Facts about one generated frame that the streaming side needs."""

    number: int  # 1 for a session's first frame
    seq: int | None  # newest input message first reflected by this frame
    generated_at: float  # time.monotonic() when the step returned


FrameSink = Callable[[np.ndarray, FrameInfo], None]


@dataclass
class Feed:
    """A session as the loop sees it: the latest action in, frames out to its sinks.

    With `folder` and `controls` set, each frame's action is taken from the folded input at the
    start of its step (the latest-state contract); otherwise it stays `action` (no-op).
    """

    action: np.ndarray
    sinks: list[FrameSink] = field(default_factory=list)
    frames: int = 0
    error: str | None = None
    folder: InputFolder | None = None
    controls: Controls | None = None
    seq: int | None = None


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

    def add(self, session_id: str, prompt_frames: np.ndarray, *,
            folder: InputFolder | None = None, controls: Controls | None = None,
            sinks: tuple[FrameSink, ...] = ()) -> Feed:
        """Start a session in the runtime; it gets its first frame on the next tick."""
        width = len(self.runtime.action_names)
        with self._lock:
            self.runtime.start(session_id, prompt_frames)
            feed = Feed(action=np.zeros(width, dtype=np.float32), sinks=list(sinks),
                        folder=folder, controls=controls)
            self._feeds[session_id] = feed
        logger.info("session %s joined the device loop", session_id)
        return feed

    def remove(self, session_id: str) -> None:
        with self._lock:
            self._feeds.pop(session_id, None)
            self.runtime.stop(session_id)
        logger.info("session %s left the device loop", session_id)

    def feed(self, session_id: str) -> Feed | None:
        with self._lock:
            return self._feeds.get(session_id)

    def is_alive(self) -> bool:
        """False once the loop thread has died; its sessions then get no more frames."""
        return self._thread.is_alive()

    def session_count(self) -> int:
        with self._lock:
            return len(self._feeds)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # a bug here must not silently stop every session's frames
                logger.exception("device loop tick failed; carrying on")
            next_tick = self._next_tick(next_tick, time.monotonic())
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _next_tick(self, previous: float, now: float) -> float:
        """The next tick, one period on; late ticks are skipped rather than burst to catch up."""
        due = previous + self.period
        return now if due < now else due

    def _tick(self) -> None:
        with self._lock:
            actions = self._take_actions()
            if not actions:
                return
            try:
                frames = self.runtime.step(actions)
                generated_at = time.monotonic()
            except Exception as exc:  # one bad step ends these sessions, not the worker
                logger.exception("runtime step failed for %s", sorted(actions))
                for sid in actions:
                    self._feeds[sid].error = repr(exc)
                return
            delivered = [(sid, self._feeds[sid], frame) for sid, frame in frames.items()
                         if sid in self._feeds]
        for sid, feed, frame in delivered:
            feed.frames += 1
            info = FrameInfo(feed.frames, feed.seq, generated_at)
            for sink in list(feed.sinks):
                try:
                    sink(frame, info)
                except Exception:  # a broken sink costs its session a frame, not the loop
                    logger.exception("session %s: frame sink failed", sid)

    def _take_actions(self) -> dict[str, np.ndarray]:
        """Every healthy feed's action for this step; a feed whose input fails gets its error."""
        actions = {}
        for sid, feed in self._feeds.items():
            if feed.error is not None:
                continue
            try:
                actions[sid] = self._take_action(feed)
            except Exception as exc:  # one session's bad input ends it, not the others
                logger.exception("session %s: taking its action failed", sid)
                feed.error = repr(exc)
        return actions

    @staticmethod
    def _take_action(feed: Feed) -> np.ndarray:
        if feed.folder is not None and feed.controls is not None:
            folded = feed.folder.take()
            feed.seq = folded.seq
            feed.action = feed.controls.vector(folded)
        return feed.action
