"""Scripted players for whole-session evaluation: held keys per browser frame, open loop.

The long-session evaluation cannot ask a generated world what lies ahead, so these players act
blind, the way a person who is not looking closely does: they walk in runs of 8-40 frames with
short pauses and turns (so they walk into trees, water and stone whenever the world puts them
there), hold "do" on whatever is in front, tap place and craft keys, or stand still. The same
player drives the teacher for the reference frames, so both see the same kind of play.

    player = ScriptedPlayer("walk", action_names, seed=3)
    held = player()  # action index held during the next frame (0: nothing held)
"""

from __future__ import annotations

import logging

import numpy as np

from ..cadence import NOOP, PERIOD

logger = logging.getLogger(__name__)

REGIMES = ("idle", "walk", "mine", "build", "mixed")
MOVES = ("move_left", "move_right", "move_up", "move_down")
PLACE = ("place_stone", "place_table", "place_plant", "place_furnace")
MAKE = ("make_wood_pickaxe", "make_stone_pickaxe", "make_wood_sword", "make_stone_sword")
# The mixed player's intents and how often it picks each.
MIXED = {"walk": 0.5, "mine": 0.2, "build": 0.15, "idle": 0.15}


class ScriptedPlayer:
    """Held-key script of one regime over a one-hot action space (Crafter's names)."""

    def __init__(self, regime: str, action_names: tuple[str, ...], seed: int = 0):
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
        missing = {"do", *MOVES} - set(action_names)
        if missing:
            raise ValueError(f"the action space lacks {sorted(missing)}")
        self.regime = regime
        self.index = {name: i for i, name in enumerate(action_names)}
        self.rng = np.random.default_rng(seed)
        self.heading = str(self.rng.choice(MOVES))
        self._plan: list[int] = []

    def __call__(self) -> int:
        """The action held during the next browser frame."""
        while not self._plan:
            regime = self.regime
            if regime == "mixed":
                regime = str(self.rng.choice(list(MIXED), p=list(MIXED.values())))
            self._plan = getattr(self, f"_{regime}")()
        return self._plan.pop(0)

    def _hold(self, name: str, frames: int) -> list[int]:
        action = NOOP if name == "noop" else self.index[name]
        return [action] * max(1, int(frames))

    def _pause(self, low: int = 0, high: int = 12) -> list[int]:
        frames = int(self.rng.integers(low, high + 1))
        return self._hold("noop", frames) if frames else []

    def _turn(self) -> None:
        if self.rng.random() < 0.5:  # keep the heading half the time: long straight walks
            self.heading = str(self.rng.choice([m for m in MOVES if m != self.heading]))

    def _idle(self) -> list[int]:
        return self._hold("noop", int(self.rng.integers(20, 120)))

    def _walk(self) -> list[int]:
        self._turn()
        return self._hold(self.heading, int(self.rng.integers(8, 41))) + self._pause()

    def _mine(self) -> list[int]:
        # Face a direction (one tap turns the player, or steps), then hit what is there.
        self._turn()
        face = self._hold(self.heading, 1) + self._pause(2, 6)
        hits = self._hold("do", int(self.rng.integers(8, 41)))
        step = self._hold(self.heading, int(self.rng.integers(1, 3)) * PERIOD)
        return face + hits + self._pause(2, 8) + step

    def _build(self) -> list[int]:
        names = [n for n in (*PLACE, *MAKE) if n in self.index]
        plan: list[int] = []
        for _ in range(int(self.rng.integers(1, 4))):
            if names:
                plan += self._hold(str(self.rng.choice(names)), int(self.rng.integers(1, 4)))
            plan += self._pause(3, 10)
        self._turn()
        return plan + self._hold(self.heading, int(self.rng.integers(4, 13))) + self._pause(2, 8)
