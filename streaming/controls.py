"""From folded browser input to a runtime's action vector, and the bindings the page shows.

A runtime declares its controls in one of two ways:
- `action_space`: an `inference.actions.ActionSpace` (the engine); its `encode` does the work and
  keeps per-session memory such as the hotbar slot;
- `key_bindings`: action name -> codes held for it, in `action_names` order (the placeholder);
  codes are KeyboardEvent.code values or "Mouse0".."Mouse4" for mouse buttons.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streaming.protocol import FoldedInput

logger = logging.getLogger(__name__)


class Controls:
    """One session's input encoder; the hotbar memory of an action space lives here."""

    def __init__(self, runtime: Any):
        self.action_names: tuple[str, ...] = tuple(runtime.action_names)
        self._space = getattr(runtime, "action_space", None)
        self._bindings: Mapping[str, Sequence[str]] | None = getattr(runtime, "key_bindings",
                                                                     None)
        self._state = None
        if self._space is not None:
            from inference.actions import InputState

            self._state = InputState()

    def vector(self, folded: FoldedInput) -> np.ndarray:
        """float32 (A,) action for one frame, A = len(action_names)."""
        if self._space is not None:
            from inference.actions import ActionInputError

            try:
                vec = self._space.encode(folded.as_browser_input(), self._state)
            except ActionInputError:
                # The protocol already validated the message; a space stricter than it costs
                # one frame of input, never the session.
                logger.warning("input rejected by the action space; sending no-op")
                vec = self._space.zeros()
            return np.asarray(vec, dtype=np.float32)
        held = set(folded.keys) | {f"Mouse{b}" for b in folded.buttons}
        vec = np.zeros(len(self.action_names), dtype=np.float32)
        for i, name in enumerate(self.action_names):
            if self._bindings and held.intersection(self._bindings.get(name, ())):
                vec[i] = 1.0
        return vec

    def bindings(self) -> list[dict]:
        """[{"action": name, "codes": [...]}] in vector order, for the on-screen key list."""
        if self._space is not None:
            rows = []
            for f in self._space.fields:
                if hasattr(f, "source"):  # a camera axis follows the mouse
                    codes = [f"MouseMove{f.source[-1].upper()}"]
                else:
                    codes = [*f.keys, *(f"Mouse{b}" for b in f.mouse_buttons)]
                if codes:
                    rows.append({"action": f.name, "codes": codes})
            return rows
        return [{"action": name, "codes": list((self._bindings or {}).get(name, ()))}
                for name in self.action_names]
