"""A recording policy that plays the way a person does, one browser frame at a time.

It chooses an intent (walk a few tiles in a mostly kept heading, stand still, hit what is ahead,
place or craft something), holds the matching key for that many browser frames and releases it.
The KeyRepeat gate then turns held keys into teacher actions at the play cadence. Walks are long
and keep their heading, so the data crosses biomes instead of jittering around the spawn point;
lava ahead aborts a walk. The policy never sleeps: a sleeping Crafter player sees a black screen
for hundreds of steps, which would teach the model nothing a player wants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..cadence import NOOP, PERIOD

logger = logging.getLogger(__name__)

MOVES = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}
HITTABLE = {"tree", "water", "stone", "coal", "iron", "diamond", "grass", "table", "furnace"}
DANGER = {"lava"}
PLACE = ("place_stone", "place_table", "place_plant", "place_furnace")
MAKE = (
    "make_wood_pickaxe",
    "make_stone_pickaxe",
    "make_wood_sword",
    "make_stone_sword",
    "make_iron_pickaxe",
    "make_iron_sword",
)


class HumanlikePolicy:
    """Held-key policy over a teacher's named actions; call it once per browser frame."""

    def __init__(
        self,
        action_names: tuple[str, ...],
        seed: int = 0,
        probe: Callable[[], dict[str, Any]] | None = None,
        period: int = PERIOD,
        turn_when_blocked: float = 0.9,
    ):
        self.names = action_names
        self.index = {name: i for i, name in enumerate(action_names)}
        self.rng = np.random.default_rng(seed)
        self.probe = probe or dict
        self.period = period
        self.turn_when_blocked = turn_when_blocked
        # A teacher without crafting (a second game) just never gets those intents.
        self.place = [self.index[n] for n in PLACE if n in self.index]
        self.make = [self.index[n] for n in MAKE if n in self.index]
        self.heading = str(self.rng.choice(list(MOVES)))
        self._plan: list[int] = []  # held action per upcoming frame

    def __call__(self) -> int:
        """The action held during the next browser frame."""
        if not self._plan:
            self._plan = self._next_intent()
        held = self._plan.pop(0)
        name = self.names[held]
        if name in MOVES:
            hints = self.probe()
            if hints.get("ahead") in DANGER:
                self._plan = self._hold(NOOP, int(self.rng.integers(2, 8)))  # back off, re-plan
                self.heading = self._turn()
                return NOOP
            free = hints.get("free", {})
            if free and not free.get(name, True) and self.rng.random() < self.turn_when_blocked:
                # People walk around obstacles rather than into them: take a free direction
                # and walk on. A few blocked pushes stay in, so the model sees "no scroll" too.
                options = [m for m, ok in free.items() if ok]
                if options:
                    self.heading = str(self.rng.choice(options))
                    move = self.index[self.heading]
                    self._plan = [move if a == held else a for a in self._plan]
                    return move
        return held

    def _hold(self, action: int, frames: int) -> list[int]:
        return [action] * max(1, frames)

    def _turn(self) -> str:
        others = [m for m in MOVES if m != self.heading]
        return str(self.rng.choice(others))

    def _next_intent(self) -> list[int]:
        r = self.rng.random()
        ahead = self.probe().get("ahead")
        if ahead in HITTABLE and ahead != "grass" and r < 0.45:
            return self._interact()
        if r < 0.55:
            return self._walk()
        if r < 0.75:
            return self._idle()
        if r < 0.88:
            return self._interact()
        tap = int(self.rng.integers(1, self.period + 1))
        if r < 0.96 and self.place:
            return self._hold(int(self.rng.choice(self.place)), tap)
        if self.make:
            return self._hold(int(self.rng.choice(self.make)), tap)
        return self._idle()

    def _walk(self) -> list[int]:
        free = [m for m, ok in self.probe().get("free", {}).items() if ok]
        if self.rng.random() < 0.3 or (free and self.heading not in free):
            self.heading = str(self.rng.choice(free)) if free else self._turn()
        tiles = int(min(24, 1 + self.rng.geometric(0.15)))  # mean about 7 tiles, some long
        move = self.index[self.heading]
        if self.rng.random() < 0.25:
            # Tapping: one tile per short press with a pause, as people nudge into place.
            plan: list[int] = []
            for _ in range(min(tiles, 4)):
                plan += self._hold(move, int(self.rng.integers(1, 3)))
                plan += self._hold(NOOP, int(self.rng.integers(2, 8)))
            return plan
        # A held key fires on frames 0, P, 2P...: holding (tiles-1)*P+1..tiles*P frames
        # moves exactly `tiles` tiles.
        return self._hold(move, (tiles - 1) * self.period + int(self.rng.integers(1, self.period)))

    def _idle(self) -> list[int]:
        return self._hold(NOOP, int(self.rng.integers(3, 40)))

    def _interact(self) -> list[int]:
        hits = int(self.rng.integers(1, 7))
        return self._hold(self.index["do"], (hits - 1) * self.period + 1)
