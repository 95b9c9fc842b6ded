"""One thread per worker steps every live session of the device together, at the frame rate.

Frames come one period apart, except that a player's key or button change (a "poke") brings
the next frame forward when the device has slack: it starts as soon as half a period has passed
since the last one began (and the last step is done), and the cadence counts on from there.
Without it a change waits for the next tick, on average half a period (25 ms at 20 fps).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from streaming import metrics

if TYPE_CHECKING:
    from inference.actions import ActionEncoder
    from inference.runtime import WorldRuntime
    from streaming.protocol import InputFolder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameInfo:
    """Facts about one generated frame that the streaming side needs."""

    number: int  # 1 for a session's first frame
    seq: int | None  # newest input message first reflected by this frame
    generated_at: float  # time.monotonic() when the step returned
    taken_at: float | None = None  # time.monotonic() when the step took its input
    changed_seq: int | None = None  # the first message of seq's that changed the held state
    changed_at: float | None = None  # time.time() that message arrived


FrameSink = Callable[[np.ndarray, FrameInfo], None]


@dataclass
class Feed:
    """A session as the loop sees it: the latest action in, frames out to its sinks.

    With `folder` and `encoder` set, each frame's action is the session's input folded at the
    start of its step (the latest-state contract), encoded once by the session's ActionEncoder;
    otherwise it stays `action` (no-op).
    """

    action: np.ndarray
    sinks: list[FrameSink] = field(default_factory=list)
    frames: int = 0
    error: str | None = None
    folder: InputFolder | None = None
    encoder: ActionEncoder | None = None
    seq: int | None = None
    changed_seq: int | None = None
    changed_at: float | None = None


class DeviceLoop:
    """Calls `runtime.step` for all sessions at once; sessions join or leave between frames.

    Every call into the runtime (building and warming it, starting, stepping and stopping
    sessions) runs on the loop's own thread once it is running. PyTorch's CPU thread pool
    (OpenMP) belongs to the thread that calls it: a second calling thread gets a second pool,
    the pools together hold more threads than there are cores, and OpenMP then parks its threads
    after every parallel region, which measured here halves a default-model session's frame rate.
    """

    def __init__(
        self,
        runtime: WorldRuntime | None,
        frame_rate: float,
        *,
        build: Callable[[], WorldRuntime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        early_ticks: bool = True,
    ):
        if (runtime is None) == (build is None):
            raise ValueError("give the device loop a runtime or a way to build one, not both")
        self.runtime = runtime
        self._build = build
        self.period = 1.0 / frame_rate
        self._clock = clock  # monotonic seconds; tests pass a fake one
        self.early_ticks = early_ticks
        self._poked = threading.Event()
        self._feeds: dict[str, Feed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future] | None] = (
            queue.SimpleQueue()
        )
        self._accepting = False  # calls go to the loop thread only while it takes them
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._run, name="device-loop", daemon=True)

    @property
    def _model(self) -> WorldRuntime:
        """The runtime; None only until a loop that builds it has started."""
        if self.runtime is None:
            raise RuntimeError("the device loop has no runtime yet; start() builds it")
        return self.runtime

    def start(self, timeout: float | None = None) -> None:
        """Start the thread; with `build`, wait until it has built and warmed the runtime."""
        with self._lock:
            self._accepting = True
        self._thread.start()
        self._ready.result(timeout)  # the build's own error, if it failed

    def poke(self) -> None:
        """A player changed what they hold (any thread): bring the next frame forward."""
        if self.early_ticks:
            self._poked.set()
            self._calls.put(None)  # wakes the thread from its wait between ticks

    def shutdown(self) -> None:
        self._stop.set()
        self._calls.put(None)  # wakes the thread from its wait between ticks
        self._thread.join(timeout=5)

    def add(
        self,
        session_id: str,
        prompt_frames: np.ndarray,
        *,
        folder: InputFolder | None = None,
        encoder: ActionEncoder | None = None,
        sinks: tuple[FrameSink, ...] = (),
    ) -> Feed:
        """Start a session in the runtime; it gets its first frame on the next tick."""
        width = self._model.action_space.dim

        if folder is not None:
            folder.on_change = self.poke

        def start_session() -> Feed:
            self._model.start(session_id, prompt_frames)
            feed = Feed(
                action=np.zeros(width, dtype=np.float32),
                sinks=list(sinks),
                folder=folder,
                encoder=encoder,
            )
            with self._lock:
                self._feeds[session_id] = feed
            return feed

        feed = self._on_loop_thread(start_session)
        logger.info("session %s joined the device loop", session_id)
        return feed

    def remove(self, session_id: str) -> None:
        with self._lock:
            self._feeds.pop(session_id, None)  # no frame reaches its sinks from here on
        try:
            self._on_loop_thread(lambda: self._model.stop(session_id))
        except Exception:  # the session is over either way; its caller has cleanup to finish
            logger.exception("session %s: the runtime failed to stop it", session_id)
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

    def _on_loop_thread(self, call: Callable[[], Any]) -> Any:
        """Run `call` on the loop thread and return its result (inline when no thread runs)."""
        with self._lock:
            queued = self._accepting and threading.current_thread() is not self._thread
            if queued:
                done: Future = Future()
                self._calls.put((call, done))
        return done.result() if queued else call()

    def _run_calls(self, timeout: float, until_poked: bool = False) -> None:
        """Run queued calls until `timeout` seconds have passed or the loop is stopping (or,
        with `until_poked`, a poke came)."""
        deadline = self._clock() + timeout
        while not self._stop.is_set() and not (until_poked and self._poked.is_set()):
            if not self._run_next_call(max(0.0, deadline - self._clock())):
                return

    def _run_next_call(self, timeout: float) -> bool:
        """Wait up to `timeout` for a queued call and run it; False if none came."""
        try:
            item = self._calls.get(timeout=timeout)
        except queue.Empty:
            return False
        if item is not None:  # None only wakes the thread
            _settle(*item)
        return True

    def _run(self) -> None:
        try:
            if self._build is not None:
                self.runtime = self._build()
            self._ready.set_result(None)
        except BaseException as exc:  # start() re-raises it in the thread that asked
            self._ready.set_exception(exc)
            self._stop.set()
        try:
            self._loop()
        finally:  # however the loop ends, nobody may be left waiting on a queued call
            self._wind_down()

    def _loop(self) -> None:
        next_tick = self._clock()
        while not self._stop.is_set():
            started = self._clock()
            self._poked.clear()  # input that arrives from here on is after this frame's take
            try:
                self._tick()
            except Exception:  # a bug here must not silently stop every session's frames
                logger.exception("device loop tick failed; carrying on")
            next_tick = self._next_tick(next_tick, self._clock())
            next_tick = self._wait_for_tick(next_tick, started + self.period / 2)

    def _wait_for_tick(self, due: float, earliest: float) -> float:
        """Run queued calls until the tick `due`; returns when the next tick starts. A poke
        brings it forward to `earliest` (or to now, when that has passed)."""
        while not self._stop.is_set():
            now = self._clock()
            if now >= due or (self._poked.is_set() and now >= earliest):
                self._run_calls(0.0)  # even a late loop answers the calls already queued
                return min(now, due)
            if self._poked.is_set():
                self._run_calls(earliest - now)
            else:
                self._run_calls(due - now, until_poked=True)
        return due

    def _wind_down(self) -> None:
        with self._lock:
            self._accepting = False  # later calls run inline; settle the ones already queued
        while self._run_next_call(0.0):
            pass
        if self._build is not None and self.runtime is not None:
            self.runtime.close()  # a runtime this loop built (a model process, say) ends with it

    def _next_tick(self, previous: float, now: float) -> float:
        """The next tick, one period on. A tick late by less than a period keeps the cadence
        (it runs at once, so one slow step costs no frame); later than that, the missed ticks
        are skipped rather than burst to catch up."""
        due = previous + self.period
        return now if now - due > self.period else due

    def _tick(self) -> None:
        with self._lock:
            actions = self._take_actions()
            feeds = {sid: self._feeds[sid] for sid in actions}
        if not actions:
            return
        taken_at = self._clock()
        # The step runs outside the lock (runner threads ask for feeds meanwhile); sessions
        # cannot start or stop during it, as both run on this thread too.
        try:
            frames = self._model.step(actions)
            generated_at = self._clock()
            metrics.frames_generated(len(frames), generated_at - taken_at)
        except Exception as exc:  # one bad step ends these sessions, not the worker
            logger.exception("runtime step failed for %s", sorted(actions))
            for feed in feeds.values():
                feed.error = repr(exc)
            return
        with self._lock:  # a session removed during the step gets no frame
            delivered = [
                (sid, feeds[sid], frame)
                for sid, frame in frames.items()
                if sid in feeds and self._feeds.get(sid) is feeds[sid]
            ]
        for sid, feed, frame in delivered:
            feed.frames += 1
            info = FrameInfo(
                feed.frames,
                feed.seq,
                generated_at,
                taken_at=taken_at,
                changed_seq=feed.changed_seq,
                changed_at=feed.changed_at,
            )
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
        if feed.folder is not None and feed.encoder is not None:
            folded = feed.folder.take()
            feed.seq = folded.seq
            feed.changed_seq, feed.changed_at = folded.changed_seq, folded.changed_at
            feed.action = feed.encoder.encode(folded)
        return feed.action


def _settle(call: Callable[[], Any], done: Future) -> None:
    try:
        done.set_result(call())
    except BaseException as exc:  # the caller's own error, raised where it waits
        done.set_exception(exc)
