"""The play cadence: how a key held in the browser (20 fps) turns into teacher steps.

Crafter's own human GUI steps at 5 fps: one tile per key press. At 20 browser frames per second
a held key therefore fires its action on the frame it is pressed and then every PERIOD frames;
the frames between are no-ops, on which the world still animates (mobs walk, daylight turns).
The recorder (training/record.py) and each served session's ActionEncoder (actions.py) both pass
the held action through KeyRepeat, so the model is trained on exactly the actions it is given in
play: "move_left" means "scroll one tile
now", and a no-op means "let the world tick".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

PERIOD = 4  # browser frames per teacher action while a key is held: 20 fps / 4 = 5 moves/s
NOOP = 0


def held_index(vector: Sequence[float], threshold: float = 0.5) -> int:
    """The held action of a (multi-)hot vector: the last pressed entry wins, none -> no-op."""
    held = NOOP
    for i, value in enumerate(vector):
        if i != NOOP and float(value) > threshold:
            held = i  # layout order: "do" and crafting beat walking, as ActionSpace one_hot
    return held


class KeyRepeat:
    """Per-player key-repeat gate: a new key fires at once, a held key every `period` frames."""

    def __init__(self, period: int = PERIOD):
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.period = period
        self.held = NOOP
        self.frames_held = 0

    def __call__(self, held: int) -> int:
        """Teacher action for this frame given the action held now."""
        if held == NOOP:
            self.held, self.frames_held = NOOP, 0
            return NOOP
        if held != self.held:
            self.held, self.frames_held = held, 0  # a new key press fires immediately
        else:
            self.frames_held += 1
        return held if self.frames_held % self.period == 0 else NOOP

    def reset(self) -> None:
        """Forget the held key (a new session or episode)."""
        self.held, self.frames_held = NOOP, 0
