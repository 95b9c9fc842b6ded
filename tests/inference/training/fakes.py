"""A cheap deterministic teacher for recorder tests: a scrolling noise world on a tile grid."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

ACTIONS = ("noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep")


class FakeTeacher:
    """16x16 frames of 4x4 tiles; moves scroll one tile; dies every `life` steps."""

    name = "fake"
    action_names = ACTIONS
    frame_size = (16, 16)

    def __init__(self, life: int = 1000, daylight: float | None = None):
        self.life = life
        self.daylight = daylight  # accepted like Crafter's; the fake world has no clock
        self.log: list[int] = []

    def reset(self, seed: int) -> np.ndarray:
        self.world = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
        self.x = self.y = 8
        self.steps = 0
        return self._frame()

    def _frame(self) -> np.ndarray:
        tiles = self.world[self.y : self.y + 4, self.x : self.x + 4]  # (4, 4, 3)
        return np.kron(tiles, np.ones((4, 4, 1), np.uint8))  # (16, 16, 3)

    def step(self, action: int) -> tuple[np.ndarray, bool]:
        self.log.append(action)
        dx, dy = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}.get(action, (0, 0))
        self.x = int(np.clip(self.x + dx, 0, 28))
        self.y = int(np.clip(self.y + dy, 0, 28))
        self.steps += 1
        return self._frame(), self.steps >= self.life

    def probe(self) -> dict:
        return {"ahead": "grass"}
