"""The WorldRuntime seam over the KV-cached Engine: what a worker serves a trained model with.

    runtime = EngineRuntime(checkpoint="models/crafter-small.safetensors", device="cpu")
    runtime.warm(); runtime.start(sid, prompt_frames); runtime.step({sid: action_vector})

The worker sends, per frame, each session's action vector as its ActionEncoder made it
(inference/actions.py), and the engine gets it unchanged. `key_repeat` tells that encoder the
play cadence a one-hot model (Crafter) was recorded at (cadence.py): a new key fires at once, a
held one every `key_repeat` frames, no-op between. Multi-binary models (Oasis) have none (1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .cadence import PERIOD
from .checkpoints import CheckpointError
from .dtypes import choose_dtype
from .engine import Engine

logger = logging.getLogger(__name__)


class EngineRuntime:
    """Serves a Reverie checkpoint through the Engine, one cache row per session."""

    def __init__(
        self,
        checkpoint: str = "",
        device: str = "cpu",
        dtype: str | None = None,
        threads: int | None = None,
        key_repeat: int = PERIOD,
        seed: int | None = None,
        sampling: Mapping[str, Any] | None = None,
        **options: Any,
    ):
        if not checkpoint:
            raise ValueError("EngineRuntime needs a checkpoint: the pool's, or DEFAULT_CHECKPOINT")
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"world-model checkpoint {path} does not exist; train one "
                "(inference/training/README.md) or set the pool's checkpoint"
            )
        device = device or "cpu"
        if device in ("gpu", "cuda") or device.startswith("cuda"):
            device = device if device.startswith("cuda") else "cuda"
        self.dtype = choose_dtype(device, dtype)
        try:
            self.engine = Engine.from_checkpoint(
                path,
                device=device,
                dtype=self.dtype,
                sampling=sampling,
                num_threads=threads,
                **options,
            )
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(path, f"cannot serve this checkpoint: {exc}") from exc
        self.checkpoint = path
        self.frame_size = self.engine.frame_size
        self.action_names = self.engine.action_names
        # Each session's ActionEncoder encodes browser input with these two.
        self.action_space = self.engine.action_space
        self.key_repeat = key_repeat if self.action_space.kind == "one_hot" else 1
        self.seed = seed
        self._live: set[str] = set()
        logger.info("serving %s on %s in %s (key repeat %d)", path, device, self.dtype, key_repeat)

    def warm(self) -> None:
        """Run one throwaway frame so the first player does not pay for allocation."""
        self.engine.warm()

    def start(self, session_id: str, prompt_frames: np.ndarray, seed: int | None = None) -> None:
        """Begin (or restart) a session from uint8 prompt frames (P,H,W,3), any size.

        seed fixes the session's noise (evaluations); None takes the runtime's seed rule.
        """
        frames = np.asarray(prompt_frames)
        if frames.ndim == 3:
            frames = frames[None]  # one image (H,W,3) -> (1,H,W,3)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"prompt frames must be (P,H,W,3), got {frames.shape}")
        frames = frames.astype(np.uint8, copy=False)
        self.stop(session_id)
        space = self.engine.action_space
        # The prompt frames stand for "nothing pressed": the space's no-op, as in training.
        prompt_actions = space.zeros().repeat(len(frames[-(self.engine.window - 1) :]), 1)
        if seed is None and self.seed is not None:
            seed = self.seed + len(self._live)
        self.engine.add_session(
            session_id,
            prompt_frames=frames[-(self.engine.window - 1) :],
            prompt_actions=prompt_actions,
            seed=seed,
        )
        self._live.add(session_id)

    def step(self, actions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Advance the listed live sessions one frame; unknown ids are skipped."""
        live = {sid: a for sid, a in actions.items() if sid in self._live}
        if len(live) != len(actions):
            logger.warning(
                "step for sessions that are not live: %s", sorted(set(actions) - set(live))
            )
        if not live:
            return {}
        return self.engine.step(live, sessions=list(live))

    def stop(self, session_id: str) -> None:
        """Forget a session; unknown ids are ignored."""
        self._live.discard(session_id)
        self.engine.remove_session(session_id)

    def is_alive(self) -> bool:
        """In this process the engine lives as long as its caller."""
        return True

    def close(self) -> None:
        """Stop every session; the weights go with the last reference to the runtime."""
        for session_id in list(self._live):
            self.stop(session_id)
