"""Typed action spaces, and the one place browser input becomes a model's action vector.

The input of one frame is what the data-channel protocol (streaming/protocol.py) validated and
folded: the keys and mouse buttons held now, and pointer and wheel movement since the previous
frame. Nothing here validates it again. Per session, an `ActionEncoder` turns it into the vector
the model takes: it owns the session's input memory (the hotbar slot) and, for models recorded at
the play cadence, the key-repeat gate (inference/cadence.py).
- keys: KeyboardEvent.code of every key held now; unknown codes are ignored;
- dx, dy: pointer movement in CSS pixels since the previous frame;
- buttons: MouseEvent.button of every mouse button held (0 left, 1 middle, 2 right, 3-4 extra);
- wheel: scroll since the previous frame; only its sign counts (one notch per frame).
Action vectors that come from code (benchmarks, evaluation) are checked by `check_vector`:
ActionInputError (a ValueError) says why one is refused.

The Oasis camera (docs/oasis-model.md §4): degrees per frame are clamped to +-20, quantised to
0.5 degree bins (bin 40 = still) and fed as (bin - 40) / 40. Dim 15 is pitch (positive = look
down, from mouse dy) and dim 16 is yaw (positive = look right, from mouse dx).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from .cadence import KeyRepeat, held_index

logger = logging.getLogger(__name__)


class ActionInputError(ValueError):
    """Browser input or an action vector the model cannot take; the message says why."""


@dataclass(frozen=True)
class Button:
    """A 0/1 action, pressed while any bound key or mouse button is held."""

    name: str
    keys: tuple[str, ...] = ()
    mouse_buttons: tuple[int, ...] = ()

    def held(self, keys: frozenset[str], buttons: frozenset[int]) -> bool:
        """True when any binding is held."""
        return any(k in keys for k in self.keys) or any(b in buttons for b in self.mouse_buttons)


@dataclass(frozen=True)
class CameraAxis:
    """A camera delta from mouse motion, quantised to bins and scaled to [-1, 1]."""

    name: str
    source: Literal["dx", "dy"]
    degrees_per_pixel: float = 0.15
    max_degrees: float = 20.0
    bin_degrees: float = 0.5

    def value(self, pixels: float) -> float:
        """Model value for a pointer movement: round(clamped degrees / bin) / bins per side."""
        degrees = max(-self.max_degrees, min(self.max_degrees, pixels * self.degrees_per_pixel))
        bins_per_side = round(self.max_degrees / self.bin_degrees)
        return round(degrees / self.bin_degrees) / bins_per_side


@dataclass
class InputState:
    """Per-session input memory: the hotbar slot the wheel steps from."""

    hotbar: int = 0


class HeldInput(Protocol):
    """One frame of validated browser input (streaming.protocol.FoldedInput is one)."""

    @property
    def keys(self) -> frozenset[str]: ...
    @property
    def dx(self) -> float: ...
    @property
    def dy(self) -> float: ...
    @property
    def buttons(self) -> frozenset[int]: ...
    @property
    def wheel(self) -> float: ...


@dataclass(frozen=True)
class BrowserInput:
    """A HeldInput built in code (tests, benchmarks); the worker passes its folded input."""

    keys: frozenset[str] = frozenset()
    dx: float = 0.0
    dy: float = 0.0
    buttons: frozenset[int] = frozenset()
    wheel: float = 0.0


@dataclass(frozen=True)
class ActionSpace:
    """A model's action vector: field i of the layout is vector entry i.

    kind "multi_binary": every Button is 0/1 on its own and CameraAxis entries are in [-1, 1]
    (the Oasis layout). kind "one_hot": exactly one Button is 1, field 0 being the no-op; when
    several are held the one latest in the layout wins, so e.g. "do" beats walking.
    """

    name: str
    kind: Literal["multi_binary", "one_hot"]
    fields: tuple[Button | CameraAxis, ...]
    wheel_cycles: tuple[str, ...] = ()  # Buttons the wheel steps through (a hotbar)

    @property
    def dim(self) -> int:
        """Length of the action vector."""
        return len(self.fields)

    def index(self, name: str) -> int:
        """Vector index of a named field."""
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise KeyError(f"{self.name} has no action {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """The actions in vector order."""
        return tuple(f.name for f in self.fields)

    def zeros(self) -> Tensor:
        """The no-op vector."""
        return self.one_hot(0) if self.kind == "one_hot" else torch.zeros(self.dim)

    def one_hot(self, index: int) -> Tensor:
        """The vector with only entry `index` set."""
        vec = torch.zeros(self.dim)
        vec[index] = 1.0
        return vec

    def encode(
        self,
        inp: HeldInput,
        state: InputState | None = None,
        gate: Callable[[int], int] | None = None,
    ) -> Tensor:
        """One frame's input -> float32 action vector (dim,).

        For a one_hot space `gate` (a KeyRepeat) turns the held action into this frame's.
        """
        state = state if state is not None else InputState()
        keys = set(inp.keys)
        wheel = (inp.wheel > 0) - (inp.wheel < 0)  # one notch per frame, whatever the scroll
        if self.wheel_cycles and wheel:
            state.hotbar = (state.hotbar + wheel) % len(self.wheel_cycles)
            slot = self.fields[self.index(self.wheel_cycles[state.hotbar])]
            if isinstance(slot, Button) and slot.keys:
                keys.add(slot.keys[0])  # scrolling is a press of the slot's key this frame
        down = frozenset(keys)
        vec = torch.zeros(self.dim)
        for i, f in enumerate(self.fields):
            if isinstance(f, CameraAxis):
                vec[i] = f.value(inp.dx if f.source == "dx" else inp.dy)
            elif f.held(down, inp.buttons):
                vec[i] = 1.0
                if f.name in self.wheel_cycles:
                    state.hotbar = self.wheel_cycles.index(f.name)
        if self.kind == "one_hot":
            held = held_index(vec)  # the last pressed in the layout, none -> no-op
            return self.one_hot(gate(held) if gate is not None else held)
        return vec

    def check_vector(self, vec: Any) -> Tensor:
        """An action vector from code: wrong length or non-finite is rejected, range clamped."""
        try:
            t = torch.as_tensor(vec, dtype=torch.float32).detach().cpu()
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ActionInputError(f"action is not numeric: {exc}") from None
        if t.shape != (self.dim,):
            raise ActionInputError(
                f"{self.name} needs a vector of {self.dim}, got {tuple(t.shape)}"
            )
        if not torch.isfinite(t).all():
            raise ActionInputError("action vector must be finite; it holds NaN or infinity")
        lows = torch.tensor([-1.0 if isinstance(f, CameraAxis) else 0.0 for f in self.fields])
        return torch.maximum(torch.minimum(t, torch.ones(self.dim)), lows)

    def bindings(self) -> list[dict[str, Any]]:
        """[{"action": name, "codes": [...]}] in vector order, for the play page's key list.

        Codes are KeyboardEvent.code values, "Mouse0".."Mouse4" for mouse buttons and
        "MouseMoveX" / "MouseMoveY" for a camera axis; actions bound to nothing are left out.
        """
        rows = []
        for f in self.fields:
            if isinstance(f, CameraAxis):  # a camera axis follows the mouse
                codes = [f"MouseMove{f.source[-1].upper()}"]
            else:
                codes = [*f.keys, *(f"Mouse{b}" for b in f.mouse_buttons)]
            if codes:
                rows.append({"action": f.name, "codes": codes})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored inside checkpoints."""
        return {
            "name": self.name,
            "kind": self.kind,
            "wheel_cycles": list(self.wheel_cycles),
            "fields": [{"type": type(f).__name__, **asdict(f)} for f in self.fields],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionSpace:
        """Inverse of to_dict; a malformed declaration raises ValueError."""
        try:
            fields: list[Button | CameraAxis] = []
            for f in data["fields"]:
                f = dict(f)
                kind = f.pop("type")
                if kind == "Button":
                    fields.append(
                        Button(
                            f["name"], tuple(f.get("keys", ())), tuple(f.get("mouse_buttons", ()))
                        )
                    )
                elif kind == "CameraAxis":
                    fields.append(CameraAxis(**f))
                else:
                    raise ValueError(f"unknown action field type {kind!r}")
            space = cls(data["name"], data["kind"], tuple(fields), tuple(data["wheel_cycles"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed action space declaration: {exc!r}") from None
        if space.kind not in ("multi_binary", "one_hot"):
            raise ValueError(f"unknown action space kind {space.kind!r}")
        return space


def _oasis_25() -> ActionSpace:
    # utils.ACTION_KEYS order of open-oasis, bound to Minecraft's default controls.
    hotbar = tuple(Button(f"hotbar.{n}", (f"Digit{n}",)) for n in range(1, 10))
    fields = (
        Button("inventory", ("KeyE",)),
        Button("ESC", ("Escape",)),
        *hotbar,
        Button("forward", ("KeyW",)),
        Button("back", ("KeyS",)),
        Button("left", ("KeyA",)),
        Button("right", ("KeyD",)),
        CameraAxis("cameraX", "dy"),
        CameraAxis("cameraY", "dx"),
        Button("jump", ("Space",)),
        Button("sneak", ("ShiftLeft", "ShiftRight")),
        Button("sprint", ("ControlLeft", "ControlRight")),
        Button("swapHands", ("KeyF",)),
        Button("attack", mouse_buttons=(0,)),
        Button("use", mouse_buttons=(2,)),
        Button("pickItem", mouse_buttons=(1,)),
        Button("drop", ("KeyQ",)),
    )
    return ActionSpace("oasis-25", "multi_binary", fields, tuple(b.name for b in hotbar))


def _crafter_17() -> ActionSpace:
    # Crafter's Discrete(17) order with the keys of its own human-play GUI.
    fields = (
        Button("noop"),
        Button("move_left", ("KeyA", "ArrowLeft")),
        Button("move_right", ("KeyD", "ArrowRight")),
        Button("move_up", ("KeyW", "ArrowUp")),
        Button("move_down", ("KeyS", "ArrowDown")),
        Button("do", ("Space",), (0,)),
        Button("sleep", ("Tab",)),
        Button("place_stone", ("KeyR",)),
        Button("place_table", ("KeyT",)),
        Button("place_furnace", ("KeyF",)),
        Button("place_plant", ("KeyP",)),
        Button("make_wood_pickaxe", ("Digit1",)),
        Button("make_stone_pickaxe", ("Digit2",)),
        Button("make_iron_pickaxe", ("Digit3",)),
        Button("make_wood_sword", ("Digit4",)),
        Button("make_stone_sword", ("Digit5",)),
        Button("make_iron_sword", ("Digit6",)),
    )
    return ActionSpace("crafter-17", "one_hot", fields)


class ActionEncoder:
    """One session's input encoder: the action space, its input memory and key-repeat gate.

    `key_repeat` > 1 (one_hot spaces only) fires a held key on the frame it is pressed and then
    every `key_repeat` frames, no-op between: the play cadence a model was recorded at.
    """

    def __init__(self, space: ActionSpace, key_repeat: int = 1):
        if key_repeat > 1 and space.kind != "one_hot":
            raise ValueError(f"key repeat needs a one_hot action space, not {space.kind}")
        self.space = space
        self.state = InputState()
        self._gate = KeyRepeat(key_repeat) if key_repeat > 1 else None

    def encode(self, inp: HeldInput) -> np.ndarray:
        """float32 (A,) action for this frame, A = space.dim."""
        return self.space.encode(inp, self.state, self._gate).numpy()


ACTION_SPACES: dict[str, ActionSpace] = {s.name: s for s in (_oasis_25(), _crafter_17())}


def get_action_space(name: str) -> ActionSpace:
    """A built-in action space by name; checkpoints may also declare their own (from_dict)."""
    try:
        return ACTION_SPACES[name]
    except KeyError:
        raise KeyError(f"unknown action space {name!r}; known: {sorted(ACTION_SPACES)}") from None
