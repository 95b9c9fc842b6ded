"""Teacher games the recorder plays: a small interface plus the Crafter teacher.

A teacher renders uint8 RGB frames (H, W, 3) and takes one discrete action index per step. A
second teacher (ViZDoom, MiniWorld) only has to provide the same five members and register in
TEACHERS. `probe()` is optional scripted-policy help: what lies ahead, how bright it is.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


# Crafter's move actions and the tile offset each walks to.
DIRECTIONS = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}


class Teacher(Protocol):
    """A game that can be reset, stepped with an action index and rendered headless."""

    name: str
    action_names: tuple[str, ...]
    frame_size: tuple[int, int]

    def reset(self, seed: int) -> np.ndarray:
        """Start a new world from a seed; returns the first frame (H, W, 3) uint8."""

    def step(self, action: int) -> tuple[np.ndarray, bool]:
        """Apply one action; returns (frame, done)."""

    def probe(self) -> dict[str, Any]:
        """Scripted-policy hints (may be empty): ahead material, daylight, time of day."""


class CrafterTeacher:
    """Crafter (Hafner 2021) at its native 64x64, one env step per call."""

    name = "crafter"

    def __init__(
        self,
        size: int = 64,
        length: int = 100_000,
        immortal: bool = True,
        daylight: float | None = None,
    ):
        try:
            import crafter
        except ImportError as exc:  # crafter is the optional extra `train`
            raise ImportError("the Crafter teacher needs `pip install -e .[train]`") from exc
        self._crafter = crafter
        self._size, self._length, self.immortal = size, length, immortal
        if daylight is not None and not 0.0 <= daylight <= 1.0:
            raise ValueError(f"daylight must lie in [0, 1], got {daylight}")
        self.daylight = daylight
        self._env = None
        self.frame_size = (size, size)
        self.action_names = tuple(crafter.constants.actions)

    def reset(self, seed: int) -> np.ndarray:
        self._env = self._crafter.Env(
            area=(64, 64),
            size=(self._size, self._size),
            reward=False,
            length=self._length,
            seed=int(seed),
        )
        if self.daylight is not None:
            # A fixed light level: Crafter's clock still runs, but the picture never dims. A
            # model trained on nights learns darkness as a state it cannot leave (an 8-frame
            # context cannot count to dawn), and a five-minute session walks into it.
            world, light = self._env._world, self.daylight
            self._env._update_time = lambda: setattr(world, "daylight", light)
        return self._env.reset()

    def step(self, action: int) -> tuple[np.ndarray, bool]:
        if self._env is None:
            raise RuntimeError("reset the teacher before stepping it")
        if self.immortal:
            # Recording wants long walks through every biome, not a respawn every 300 steps
            # (at the play cadence hunger and zombies come 4x as often per tile walked).
            inventory = self._env._player.inventory
            for stat in ("health", "food", "drink", "energy"):
                inventory[stat] = 9
        obs, _reward, done, _info = self._env.step(int(action))
        return obs, bool(done)

    def probe(self) -> dict[str, Any]:
        env = self._env
        if env is None:
            return {}
        player = env._player  # private, but stable across crafter 1.8.x
        x, y = player.pos + player.facing
        world = env._world
        inside = 0 <= x < world.area[0] and 0 <= y < world.area[1]
        material = world[x, y][0] if inside else None
        free = {}
        for name, (dx, dy) in DIRECTIONS.items():
            tx, ty = player.pos[0] + dx, player.pos[1] + dy
            inside_t = 0 <= tx < world.area[0] and 0 <= ty < world.area[1]
            # Lava is "free" to Crafter's player (and deadly): report it as blocked.
            free[name] = bool(inside_t and player.is_free((tx, ty)) and world[tx, ty][0] != "lava")
        return {
            "ahead": material,
            "free": free,
            "facing": tuple(int(v) for v in player.facing),
            "daylight": float(world.daylight),
            "time": env._step % 300,
            "step": env._step,
            "sleeping": bool(player.sleeping),
            "health": int(player.health),
            "inventory": dict(player.inventory),
        }

    def set_time(self, step: int) -> None:
        """Jump the day clock (the recorder skips nights; the jump starts a new segment)."""
        self._env._step = int(step)
        self._env._update_time()


TEACHERS = {"crafter": CrafterTeacher}


def make_teacher(name: str, **options: Any) -> Teacher:
    """A teacher by registry name."""
    try:
        return TEACHERS[name](**options)
    except KeyError:
        raise KeyError(f"unknown teacher {name!r}; known: {sorted(TEACHERS)}") from None
