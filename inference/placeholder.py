"""A deterministic stand-in world: the prompt image scrolls with the movement actions.

It needs no weights, costs almost nothing, and reacts to input in a checkable way (hold
"right" and the picture shifts left by one pixel per frame), which is what the platform and
streaming tests need from a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from .actions import ActionSpace, Button

logger = logging.getLogger(__name__)

# Four movement keys and one "do" button, declared like any model's actions: the play page lists
# these bindings, and the session's ActionEncoder turns held ones into the action vector.
ACTION_SPACE = ActionSpace(
    "placeholder-5",
    "multi_binary",
    (
        Button("forward", ("KeyW", "ArrowUp")),
        Button("back", ("KeyS", "ArrowDown")),
        Button("left", ("KeyA", "ArrowLeft")),
        Button("right", ("KeyD", "ArrowRight")),
        Button("attack", ("Space",), (0,)),
    ),
)
ACTION_NAMES = ACTION_SPACE.names


class PlaceholderRuntime:
    """Scrolls each session's prompt frame by its movement keys, one pixel per frame."""

    action_space = ACTION_SPACE
    action_names = ACTION_NAMES
    key_repeat = 1  # every held frame moves: no play cadence to follow

    def __init__(self, height: int = 64, width: int = 64, **_options):
        self.frame_size = (height, width)
        self._frames: dict[str, np.ndarray] = {}
        self._ticks: dict[str, int] = {}

    def warm(self) -> None:
        self.start("warm-up", np.zeros((1, *self.frame_size, 3), dtype=np.uint8))
        self.step({"warm-up": np.zeros(len(ACTION_NAMES), dtype=np.float32)})
        self.stop("warm-up")

    def start(self, session_id: str, prompt_frames: np.ndarray) -> None:
        if prompt_frames.ndim != 4 or prompt_frames.shape[-1] != 3:
            raise ValueError(f"prompt frames must be (P,H,W,3), got {prompt_frames.shape}")
        last = prompt_frames[-1]  # (H,W,3)
        if last.shape[:2] != self.frame_size:
            last = _resize_nearest(last, self.frame_size)
        self._frames[session_id] = last.astype(np.uint8).copy()
        self._ticks[session_id] = 0

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for session_id, action in actions.items():
            frame = self._frames.get(session_id)
            if frame is None:
                continue
            forward, back, left, right, attack = (float(v) for v in action[: len(ACTION_NAMES)])
            # Walking right moves the world left, as in a top-down game.
            dx = int(left > 0.5) - int(right > 0.5)
            dy = int(forward > 0.5) - int(back > 0.5)
            frame = np.roll(frame, shift=(dy, dx), axis=(0, 1))  # (H,W,3)
            self._frames[session_id] = frame
            self._ticks[session_id] += 1
            shown = frame.copy()
            if attack > 0.5:
                shown = 255 - shown
            out[session_id] = shown
        return out

    def stop(self, session_id: str) -> None:
        self._frames.pop(session_id, None)
        self._ticks.pop(session_id, None)

    def is_alive(self) -> bool:
        return True  # nothing here can die on its own

    def close(self) -> None:
        self._frames.clear()
        self._ticks.clear()


def _resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    rows = np.arange(height) * image.shape[0] // height
    cols = np.arange(width) * image.shape[1] // width
    return image[rows][:, cols]  # (height,width,3)
