"""Rollouts of a model under training through the serving Engine, so samples show what plays.

free_run: context of P true latents, then every frame generated from the model's own output.
teacher_forced: every frame generated from the true preceding context (one-step predictions).

Dimension letters: P context frames, F generated frames, C/H/W latent shape, A action dim.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import Tensor

from ..actions import ActionSpace
from ..config import EngineOptions, WorldConfig
from ..engine import Engine
from ..models import ConvAutoencoder, DiT

logger = logging.getLogger(__name__)


def make_engine(
    world: WorldConfig, dit: DiT, ae: ConvAutoencoder, space: ActionSpace, dtype: str = "float32"
) -> Engine:
    """An engine over copies of the modules (the engine casts and freezes what it is given)."""
    return Engine(world, copy.deepcopy(dit), copy.deepcopy(ae), space, EngineOptions(dtype=dtype))


@torch.no_grad()
def free_run(
    engine: Engine, context: Tensor, context_actions: Tensor, actions: Tensor, seed: int = 0
) -> Tensor:
    """Generate len(actions) latents (F,C,H,W) after context (P,C,H,W) with its actions (P,A)."""
    sid = f"eval-{seed}"
    keep = engine.window - 1
    engine.add_session(
        sid, prompt_latents=context[-keep:], prompt_actions=context_actions[-keep:], seed=seed
    )
    try:
        return torch.stack([engine.step_latents({sid: a})[sid] for a in actions])
    finally:
        engine.remove_session(sid)


@torch.no_grad()
def teacher_forced(
    engine: Engine, latents: Tensor, actions: Tensor, first: int, count: int, seed: int = 0
) -> Tensor:
    """One-step predictions of frames first..first+count-1, each from the true context."""
    keep = engine.window - 1
    out = []
    for i in range(first, first + count):
        lo = max(0, i - keep)
        out.append(free_run(engine, latents[lo:i], actions[lo:i], actions[i : i + 1], seed + i)[0])
    return torch.stack(out)


def decode(engine: Engine, latents: Tensor) -> np.ndarray:
    """Scaled latents (F,C,H,W) -> uint8 frames (F,H,W,3)."""
    return engine.decode_latents(latents.to(engine.device))
