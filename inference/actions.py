"""Typed action spaces and the mapping from browser input to a model's action vector.

Browser input is one message per frame:
    {"keys": ["KeyW", ...], "mouse": {"dx": 3.0, "dy": -1.5}, "buttons": [0], "wheel": -1}
- keys: KeyboardEvent.code of every key held now; unknown codes are ignored;
- mouse: pointer movement in CSS pixels since the previous frame;
- buttons: MouseEvent.button of every mouse button held (0 left, 1 middle, 2 right, 3-4 extra);
- wheel: scroll since the previous frame; only its sign counts (one notch per frame).
Every field is optional. Malformed input raises ActionInputError (a ValueError) with the reason;
out-of-range magnitudes are clamped. Nothing here raises anything else, so a bad message can cost
a player one frame's input but never a step of the engine.

The Oasis camera (spec section 4): degrees per frame are clamped to +-20, quantised to 0.5 degree
bins (bin 40 = still) and fed as (bin - 40) / 40. Dim 15 is pitch (positive = look down, from
mouse dy) and dim 16 is yaw (positive = look right, from mouse dx).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

MAX_KEYS = 32
MAX_KEY_CODE_LEN = 32
MOUSE_BUTTONS = range(5)
KNOWN_FIELDS = frozenset({"keys", "mouse", "buttons", "wheel"})


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


@dataclass(frozen=True)
class BrowserInput:
    """One frame of validated browser input."""

    keys: frozenset[str] = frozenset()
    dx: float = 0.0
    dy: float = 0.0
    buttons: frozenset[int] = frozenset()
    wheel: int = 0  # -1, 0 or +1


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ActionInputError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ActionInputError(f"{what} must be finite, got {value!r}")
    return float(value)


def _sequence(value: Any, what: str) -> Sequence:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ActionInputError(f"{what} must be a list, got {type(value).__name__}")
    if len(value) > MAX_KEYS:
        raise ActionInputError(f"{what} lists {len(value)} entries; at most {MAX_KEYS}")
    return value


def parse_browser_input(raw: Any) -> BrowserInput:
    """Validate one browser message (schema in the module docstring)."""
    if not isinstance(raw, Mapping):
        raise ActionInputError(f"input must be an object, got {type(raw).__name__}")
    unknown = set(raw) - KNOWN_FIELDS
    if unknown:
        raise ActionInputError(f"unknown input field(s) {sorted(map(str, unknown))}")
    keys = _sequence(raw.get("keys", ()), "keys")
    for key in keys:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CODE_LEN:
            raise ActionInputError(f"keys must be short KeyboardEvent.code strings, got {key!r}")
    mouse = raw.get("mouse", {})
    if not isinstance(mouse, Mapping) or set(mouse) - {"dx", "dy"}:
        raise ActionInputError("mouse must be an object with only dx and dy")
    buttons = _sequence(raw.get("buttons", ()), "buttons")
    for button in buttons:
        if isinstance(button, bool) or not isinstance(button, int) or button not in MOUSE_BUTTONS:
            raise ActionInputError(f"buttons must be integers 0..4, got {button!r}")
    wheel = _number(raw.get("wheel", 0), "wheel")
    return BrowserInput(
        keys=frozenset(keys),
        dx=_number(mouse.get("dx", 0), "mouse.dx"),
        dy=_number(mouse.get("dy", 0), "mouse.dy"),
        buttons=frozenset(buttons),
        wheel=(wheel > 0) - (wheel < 0),
    )


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

    def zeros(self) -> Tensor:
        """The no-op vector."""
        vec = torch.zeros(self.dim)
        if self.kind == "one_hot":
            vec[0] = 1.0
        return vec

    def encode(self, raw: Any, state: InputState | None = None) -> Tensor:
        """Browser message -> float32 action vector (dim,); raises ActionInputError."""
        inp = raw if isinstance(raw, BrowserInput) else parse_browser_input(raw)
        state = state if state is not None else InputState()
        keys = set(inp.keys)
        if self.wheel_cycles and inp.wheel:
            state.hotbar = (state.hotbar + inp.wheel) % len(self.wheel_cycles)
            slot = self.fields[self.index(self.wheel_cycles[state.hotbar])]
            if isinstance(slot, Button) and slot.keys:
                keys.add(slot.keys[0])  # scrolling is a press of the slot's key this frame
        held = frozenset(keys)
        vec = torch.zeros(self.dim)
        for i, f in enumerate(self.fields):
            if isinstance(f, CameraAxis):
                vec[i] = f.value(inp.dx if f.source == "dx" else inp.dy)
            elif f.held(held, inp.buttons):
                vec[i] = 1.0
                if f.name in self.wheel_cycles:
                    state.hotbar = self.wheel_cycles.index(f.name)
        if self.kind == "one_hot":
            pressed = vec.nonzero().flatten().tolist()  # indices of held buttons
            vec.zero_()
            vec[pressed[-1] if pressed else 0] = 1.0
        return vec

    def check_vector(self, vec: Any) -> Tensor:
        """An action vector from code: wrong length or non-finite is rejected, range clamped."""
        try:
            t = torch.as_tensor(vec, dtype=torch.float32).detach().cpu()
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ActionInputError(f"action is not numeric: {exc}") from None
        if t.shape != (self.dim,):
            raise ActionInputError(f"{self.name} needs a vector of {self.dim}, "
                                   f"got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ActionInputError("action vector holds NaN or infinity")
        lows = torch.tensor([-1.0 if isinstance(f, CameraAxis) else 0.0 for f in self.fields])
        return torch.maximum(torch.minimum(t, torch.ones(self.dim)), lows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored inside checkpoints."""
        return {
            "name": self.name, "kind": self.kind, "wheel_cycles": list(self.wheel_cycles),
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
                    fields.append(Button(f["name"], tuple(f.get("keys", ())),
                                         tuple(f.get("mouse_buttons", ()))))
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
        Button("inventory", ("KeyE",)), Button("ESC", ("Escape",)), *hotbar,
        Button("forward", ("KeyW",)), Button("back", ("KeyS",)),
        Button("left", ("KeyA",)), Button("right", ("KeyD",)),
        CameraAxis("cameraX", "dy"), CameraAxis("cameraY", "dx"),
        Button("jump", ("Space",)), Button("sneak", ("ShiftLeft", "ShiftRight")),
        Button("sprint", ("ControlLeft", "ControlRight")), Button("swapHands", ("KeyF",)),
        Button("attack", mouse_buttons=(0,)), Button("use", mouse_buttons=(2,)),
        Button("pickItem", mouse_buttons=(1,)), Button("drop", ("KeyQ",)),
    )
    return ActionSpace("oasis-25", "multi_binary", fields, tuple(b.name for b in hotbar))


def _crafter_17() -> ActionSpace:
    # Crafter's Discrete(17) order with the keys of its own human-play GUI.
    fields = (
        Button("noop"), Button("move_left", ("KeyA", "ArrowLeft")),
        Button("move_right", ("KeyD", "ArrowRight")), Button("move_up", ("KeyW", "ArrowUp")),
        Button("move_down", ("KeyS", "ArrowDown")), Button("do", ("Space",), (0,)),
        Button("sleep", ("Tab",)), Button("place_stone", ("KeyR",)),
        Button("place_table", ("KeyT",)), Button("place_furnace", ("KeyF",)),
        Button("place_plant", ("KeyP",)), Button("make_wood_pickaxe", ("Digit1",)),
        Button("make_stone_pickaxe", ("Digit2",)), Button("make_iron_pickaxe", ("Digit3",)),
        Button("make_wood_sword", ("Digit4",)), Button("make_stone_sword", ("Digit5",)),
        Button("make_iron_sword", ("Digit6",)),
    )
    return ActionSpace("crafter-17", "one_hot", fields)


ACTION_SPACES: dict[str, ActionSpace] = {s.name: s for s in (_oasis_25(), _crafter_17())}


def get_action_space(name: str) -> ActionSpace:
    """A built-in action space by name; checkpoints may also declare their own (from_dict)."""
    try:
        return ACTION_SPACES[name]
    except KeyError:
        raise KeyError(f"unknown action space {name!r}; known: {sorted(ACTION_SPACES)}") from None
