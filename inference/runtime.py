"""The seam between a worker and a world model: start, step with actions, stop.

The worker's device loop calls `step` once per frame with the action vector of every live
session (each session's `inference.actions.ActionEncoder` made it from the runtime's
`action_space` and `key_repeat`), so one call can serve all players of a device in a batch.
A runtime class is built with keyword options: `checkpoint`, `device` and, for CPU pools,
`threads`; all of its methods are called from one thread (the worker's device loop).
This module imports no torch: a worker names the seam without loading a model.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from inference.actions import ActionSpace

logger = logging.getLogger(__name__)


class WorldRuntime(Protocol):
    """Everything a worker uses of a model; the engine, the placeholder and the model process
    (inference/process_runtime.py) all provide it."""

    #: (height, width) of the frames `step` returns.
    frame_size: tuple[int, int]
    #: The model's actions in vector order, with the browser controls bound to each.
    action_space: ActionSpace
    #: Browser frames between repeats of a held key, the play cadence the model was recorded
    #: at (inference/cadence.py); 1: every held frame acts.
    key_repeat: int

    def warm(self) -> None:
        """Load weights and run one throwaway step, so no player waits on a cold start."""

    def start(self, session_id: str, prompt_frames: np.ndarray) -> None:
        """Begin a session from uint8 prompt frames (P,H,W,3)."""

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Advance every listed session one frame; returns uint8 (H,W,3) frames by session id."""

    def stop(self, session_id: str) -> None:
        """Forget a session; unknown ids are ignored so stopping is idempotent."""

    def is_alive(self) -> bool:
        """False once the runtime can serve no more frames (its model process died, say)."""

    def close(self) -> None:
        """Free what the runtime holds beyond memory (a model process); idempotent."""


def load_runtime(dotted_path: str, **options) -> WorldRuntime:
    """Build the runtime class named by a dotted path (the WORKER_RUNTIME setting)."""
    module_name, _, class_name = dotted_path.rpartition(".")
    if not module_name:
        raise ValueError(f"WORKER_RUNTIME must be a dotted path, got {dotted_path!r}")
    runtime_class = getattr(importlib.import_module(module_name), class_name)
    return runtime_class(**options)
