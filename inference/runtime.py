"""The seam between the session runner and a world model: start, step with actions, stop.

The runner (in the worker process that owns the slots) calls `step` once per frame with the
latest action of every live session, so one call can serve all players of a device in a batch.
A runtime class is built with keyword options: `checkpoint`, `device` and, for CPU pools,
`threads`; all of its methods are called from one thread (the worker's device loop).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

import numpy as np


class WorldRuntime(Protocol):
    """What a worker needs from a model; the engine and the placeholder both provide it."""

    #: (height, width) of the frames `step` returns.
    frame_size: tuple[int, int]
    #: Names of the model's actions, in vector order (shown to the player as key bindings).
    action_names: tuple[str, ...]

    def warm(self) -> None:
        """Load weights and run one throwaway step, so no player waits on a cold start."""

    def start(self, session_id: str, prompt_frames: np.ndarray) -> None:
        """Begin a session from uint8 prompt frames (P,H,W,3)."""

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Advance every listed session one frame; returns uint8 (H,W,3) frames by session id."""

    def stop(self, session_id: str) -> None:
        """Forget a session; unknown ids are ignored so stopping is idempotent."""


def load_runtime(dotted_path: str, **options) -> WorldRuntime:
    """Build the runtime class named by a dotted path (the WORKER_RUNTIME setting)."""
    module_name, _, class_name = dotted_path.rpartition(".")
    if not module_name:
        raise ValueError(f"WORKER_RUNTIME must be a dotted path, got {dotted_path!r}")
    runtime_class = getattr(importlib.import_module(module_name), class_name)
    return runtime_class(**options)
