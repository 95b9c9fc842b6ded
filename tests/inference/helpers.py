"""Helpers for the inference tests: random-weight engines and reproducible inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from inference.config import (
    ConvAutoencoderConfig,
    DiTConfig,
    EngineOptions,
    SamplingConfig,
    WorldConfig,
    get_preset,
)
from inference.engine import Engine
from inference.models import build_autoencoder, build_dit, randomize_

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
# The reference fixture, kept in the repository (about 3 MB) so parity tests run on any clone.
OASIS_TINY = REPO_ROOT / "tests" / "fixtures" / "oasis-tiny"


def make_engine(
    config: WorldConfig | str = "tiny", seed: int = 0, std: float | None = None, **options
) -> Engine:
    """Random-weight engine; the same seed gives the same weights."""
    cfg = get_preset(config) if isinstance(config, str) else config
    dit = randomize_(build_dit(cfg.dit), seed, std=std)
    ae = randomize_(build_autoencoder(cfg.autoencoder), seed + 1)
    return Engine(cfg, dit, ae, options=EngineOptions(**options))


def random_actions(n: int, dim: int, seed: int) -> torch.Tensor:
    """n sparse 0/1 action rows, row 0 zero like the reference's prompt action."""
    gen = torch.Generator().manual_seed(seed)
    actions = (torch.rand(n, dim, generator=gen) > 0.7).float()
    actions[0] = 0
    return actions


def random_latents(engine: Engine, n: int, seed: int) -> torch.Tensor:
    """n prompt latents (n, C, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n, *engine.latent_shape), generator=gen)


def noise_frames(engine: Engine, n: int, seed: int) -> torch.Tensor:
    """The n draws a session seeded with seed takes, in order: (n, C, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn(engine.latent_shape, generator=gen) for _ in range(n)])


def run_engine(engine: Engine, session: str, actions: torch.Tensor, start: int) -> torch.Tensor:
    """Step one session through actions[start:]; returns its latents (F - start, C, H, W)."""
    return torch.stack([engine.step_latents({session: a})[session] for a in actions[start:]])


# A crafter-shaped world small enough to train and export in a test.
MINI = WorldConfig(
    name="mini",
    dit=DiTConfig(
        input_h=4,
        input_w=4,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        depth=1,
        num_heads=2,
        external_cond_dim=17,
        max_frames=4,
    ),
    autoencoder=ConvAutoencoderConfig(
        image_height=16, image_width=16, latent_channels=4, channels=(8, 8, 16)
    ),
    scaling_factor=1.0,
    sampling=SamplingConfig(ddim_steps=2, window_mode="rolling"),
    action_space="crafter-17",
)
