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
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .runtime import load_runtime

logger = logging.getLogger(__name__)

# What the worker side reads off a runtime (streaming/controls.py, the session runner).
MIRRORED = ("frame_size", "action_names", "action_space", "key_bindings")
CALLS = ("warm", "start", "step", "stop")


class ModelProcessError(RuntimeError):
    """The model process died, hung or could not be started."""


class ProcessRuntime:
    """Builds `target` (a dotted WorldRuntime class path) in a spawned child and forwards calls.

    Errors raised by the runtime in the child are raised here with their own type and message.
    """

    def __init__(self, target: str, *, start_timeout: float = 600.0,
                 call_timeout: float = 120.0, **options: Any):
        self.target = target
        self.call_timeout = call_timeout
        self._closed = False
        context = multiprocessing.get_context("spawn")  # a fork would copy the worker's threads
        self._conn, child = context.Pipe()
        log_level = logging.getLogger().getEffectiveLevel()
        self._process = context.Process(target=serve, args=(child, target, options, log_level),
                                        name="reverie-model", daemon=True)
        self._process.start()
        child.close()
        try:
            facts = self._receive(start_timeout, "start")
        except BaseException:
            self.close()
            raise
        for name, value in facts.items():
            setattr(self, name, value)
        logger.info("model process %d serves %s", self._process.pid, target)

    def warm(self) -> None:
        self._call("warm")

    def start(self, session_id: str, prompt_frames: np.ndarray) -> None:
        self._call("start", session_id, prompt_frames)

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("step", dict(actions))

    def stop(self, session_id: str) -> None:
        if not self._closed:  # a closed runtime has no sessions left to forget
            self._call("stop", session_id)

    def close(self) -> None:
        """Ask the child to exit; kill it if it does not. Idempotent."""
        self._closed = True
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

    def _call(self, method: str, *args: Any) -> Any:
        try:
            self._conn.send((method, args))
        except (OSError, ValueError):
            raise self._exited(method) from None
        return self._receive(self.call_timeout, method)

    def _exited(self, what: str) -> ModelProcessError:
        self._process.join(timeout=5)
        return ModelProcessError(f"the model process exited (code {self._process.exitcode}) "
                                 f"before {what}")

    def _receive(self, timeout: float, what: str) -> Any:
        try:
            ready = self._conn.poll(timeout)
            if ready:
                status, value = self._conn.recv()
        except (EOFError, OSError):
            ready, status = True, None
        if not ready:
            raise ModelProcessError(f"the model process did not answer {what} in {timeout:.0f} s")
        if status is None:
            raise self._exited(f"answering {what}")
        if status == "error":
            raise value
        return value


def serve(conn: Connection, target: str, options: dict, log_level: int = logging.INFO) -> None:
    """The child: build the runtime, report its facts, then answer calls until told to close."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        runtime = load_runtime(target, **options)
    except BaseException as exc:
        conn.send(("error", _sendable(exc)))
        return
    conn.send(("ok", {name: getattr(runtime, name) for name in MIRRORED
                      if hasattr(runtime, name)}))
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
            conn.send(("error", _sendable(exc)))


def _sendable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
