"""A WorldRuntime served from a child process, so the model shares no GIL with the streaming.

PyTorch releases Python's GIL inside every operator and takes it back after; a frame of the
default model is about a thousand operators. In the worker process the streaming thread (aiortc:
RTP, SRTP, the VP8 encoder) holds the GIL for short stretches many times a second, and each time
the model's thread waits at its next operator. Measured on two CPU cores, a thread that holds the
GIL for 0.1 ms every 2 ms cuts the default model from 21 to 16.5 fps. In a process of its own
the model runs at full speed; frames (12 KB) and actions cross a pipe.

    runtime = ProcessRuntime("inference.engine_runtime.EngineRuntime", checkpoint=..., device=...)
    runtime.warm(); runtime.start(sid, prompt); runtime.step({sid: vector}); runtime.close()
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from .runtime import load_runtime

if TYPE_CHECKING:
    from .actions import ActionSpace
    from .runtime import WorldRuntime

logger = logging.getLogger(__name__)

# The calls forwarded to the child; is_alive and close are answered here.
CALLS = ("warm", "start", "step", "stop")


@dataclass(frozen=True)
class RuntimeFacts:
    """The WorldRuntime attributes, read once in the child and sent to the worker."""

    frame_size: tuple[int, int]
    action_space: ActionSpace
    key_repeat: int

    @classmethod
    def of(cls, runtime: WorldRuntime) -> RuntimeFacts:
        return cls(tuple(runtime.frame_size), runtime.action_space, int(runtime.key_repeat))


class ModelProcessError(RuntimeError):
    """The model process died, hung or could not be started."""


class ProcessRuntime:
    """Builds `target` (a dotted WorldRuntime class path) in a spawned child and forwards calls.

    A WorldRuntime itself. Errors raised by the runtime in the child are raised here with their
    own type and message.
    A child that dies or does not answer in time is killed; every later call then raises
    ModelProcessError at once (`stop` excepted: a dead model has no sessions left to forget).
    """

    def __init__(
        self,
        target: str,
        *,
        start_timeout: float = 600.0,
        call_timeout: float = 120.0,
        **options: Any,
    ):
        self.target = target
        self.start_timeout, self.call_timeout = start_timeout, call_timeout
        self._broken: str | None = None  # why calls can no longer be answered
        context = multiprocessing.get_context("spawn")  # a fork would copy the worker's threads
        self._conn, child = context.Pipe()
        log_level = logging.getLogger().getEffectiveLevel()
        self._process = context.Process(
            target=serve,
            args=(child, target, options, log_level),
            name="reverie-model",
            daemon=True,
        )
        self._process.start()
        child.close()
        try:
            facts: RuntimeFacts = self._receive(start_timeout, "start")
        except BaseException:
            self.close()
            raise
        self.frame_size = facts.frame_size
        self.action_space = facts.action_space
        self.key_repeat = facts.key_repeat
        logger.info("model process %d serves %s", self._process.pid, target)

    @property
    def action_names(self) -> tuple[str, ...]:
        """The model's actions in vector order."""
        return self.action_space.names

    def is_alive(self) -> bool:
        """False once the child has died, hung or been closed."""
        return self._broken is None and self._process.is_alive()

    def warm(self) -> None:
        """Warm the model in the child (as long as building it may take)."""
        self._call("warm", timeout=self.start_timeout)

    def start(self, session_id: str, prompt_frames: np.ndarray) -> None:
        """Begin a session from uint8 prompt frames (P,H,W,3)."""
        self._call("start", session_id, prompt_frames)

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One frame for every listed session; uint8 (H,W,3) by session id."""
        return self._call("step", dict(actions))

    def stop(self, session_id: str) -> None:
        """Forget a session; idempotent, and a no-op once the child is gone."""
        if self.is_alive():
            self._call("stop", session_id)

    def close(self) -> None:
        """Ask the child to exit; kill it if it does not. Idempotent."""
        self._broken = self._broken or "the model process was closed"
        if self._process.is_alive():
            try:
                self._conn.send(("close", ()))
            except (OSError, ValueError):
                pass  # the pipe is already gone
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._conn.close()

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        if self._broken is not None:
            raise ModelProcessError(f"{self._broken}; cannot {method}")
        try:
            self._conn.send((method, args))
        except (OSError, ValueError):
            raise self._fail(f"the model process exited before {method}") from None
        return self._receive(self.call_timeout if timeout is None else timeout, method)

    def _receive(self, timeout: float, what: str) -> Any:
        try:
            if not self._conn.poll(timeout):
                # A late answer would be read as the next call's: this child is done for.
                raise self._fail(f"the model process did not answer {what} in {timeout:.0f} s")
            status, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._fail(f"the model process exited while answering {what}") from None
        if status == "error":
            raise value
        return value

    def _fail(self, reason: str) -> ModelProcessError:
        """Mark the runtime broken, make sure the child is gone, and say why."""
        if self._process.is_alive():
            self._process.kill()  # hung or half-answered: nothing it says can be trusted now
        self.close()
        self._broken = f"{reason} (exit code {self._process.exitcode})"
        logger.error("%s", self._broken)
        return ModelProcessError(self._broken)


def serve(conn: Connection, target: str, options: dict, log_level: int = logging.INFO) -> None:
    """The child: build the runtime, report its facts, then answer calls until told to close."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Ctrl+C reaches the whole process group; the worker shuts down first and then closes us
    # (or its exit ends the pipe, which ends this loop).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runtime = load_runtime(target, **options)
    except BaseException as exc:
        conn.send(("error", _sendable(exc)))
        return
    conn.send(("ok", RuntimeFacts.of(runtime)))
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone: so are we
        if method == "close":
            return
        try:
            if method not in CALLS:
                raise ValueError(f"a runtime has no call {method!r}")
            conn.send(("ok", getattr(runtime, method)(*args)))
        except Exception as exc:
            exc.add_note(f"(raised in the model process)\n{traceback.format_exc()}")
            conn.send(("error", _sendable(exc)))


def _sendable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
