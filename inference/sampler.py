"""The Oasis reference sampling loop (docs/oasis-model.md §4), slow on purpose: it is the yardstick.

Every denoising step reruns the DiT over the whole window of up to max_frames frames. The
schedule arithmetic lives here and the engine imports it, so both paths round identically.

Dimension letters: B batch, F frames in the video, P prompt frames, C/H/W latent channels,
height and width, A action dim.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from .models.dit import DiT

logger = logging.getLogger(__name__)

MAX_NOISE_LEVEL = 1000
NOISE_ABS_MAX = 20.0


def sigmoid_alphas_cumprod(timesteps: int = MAX_NOISE_LEVEL) -> Tensor:
    """alpha-bar (timesteps,) of the sigmoid schedule (start -3, end 3, tau 1).

    The betas come from a float64 curve; cumprod then runs in float32, as in generate.py: the
    float64 cumprod differs by up to 1.3e-5 relative.
    """
    start, end = -3.0, 3.0
    u = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    # The endpoints are float32 0-d tensors in the reference; keep their rounding.
    v_start, v_end = torch.tensor(start).sigmoid(), torch.tensor(end).sigmoid()
    curve = (-(u * (end - start) + start).sigmoid() + v_end) / (v_end - v_start)
    curve = curve / curve[0]
    betas = torch.clip(1 - curve[1:] / curve[:-1], 0, 0.999).float()
    return torch.cumprod(1.0 - betas, dim=0)


def noise_levels(ddim_steps: int, max_noise_level: int = MAX_NOISE_LEVEL) -> list[int]:
    """Integer levels [-1, ..., max-1] (length steps+1), truncated from float32 as the reference."""
    grid = torch.linspace(-1, max_noise_level - 1, ddim_steps + 1)
    return [int(level) for level in grid.tolist()]  # int() truncates toward zero, like .long()


def step_levels(ddim_steps: int, max_noise_level: int = MAX_NOISE_LEVEL) -> list[tuple[int, int]]:
    """(t, t_next) for the new frame at each step k = steps..1; t_next < 0 becomes t."""
    levels = noise_levels(ddim_steps, max_noise_level)
    pairs = []
    for k in range(ddim_steps, 0, -1):
        t, t_next = levels[k], levels[k - 1]
        pairs.append((t, t if t_next < 0 else t_next))
    return pairs


def ddim_update(x: Tensor, v: Tensor, abar_t: Tensor, abar_next: Tensor) -> Tensor:
    """One eta=0 DDIM step from a v-prediction, in the reference's exact rounding order.

    abar_next = 1 returns the x0 prediction. The noise estimate multiplies by sqrt(1/abar)
    rather than dividing by sqrt(abar): that is the order generate.py rounds in.
    """
    x_start = abar_t.sqrt() * x - (1 - abar_t).sqrt() * v
    x_noise = ((1 / abar_t).sqrt() * x - x_start) / (1 / abar_t - 1).sqrt()
    return abar_next.sqrt() * x_start + x_noise * (1 - abar_next).sqrt()


@torch.no_grad()
def rollout(
    dit: DiT,
    prompt_latents: Tensor,
    actions: Tensor,
    noises: Tensor,
    ddim_steps: int,
    max_frames: int,
    stabilization_level: int = 15,
) -> Tensor:
    """Reference rollout; returns all latents (B, F, C, H, W), prompt included.

    prompt_latents (B, P, C, H, W) are scaled VAE means; actions (B, F, A) cover every frame
    (row 0, the first prompt frame, is all zeros in generate.py); noises (B, F-P, C, H, W) are
    the per-frame draws, clamped here to +-20 as the reference clamps its randn.
    """
    B, P = prompt_latents.shape[:2]
    total = actions.shape[1]
    if noises.shape[1] != total - P:
        raise ValueError(f"need {total - P} noise frames for {total} frames, got {noises.shape[1]}")
    device = prompt_latents.device
    abar = sigmoid_alphas_cumprod().to(device)
    ctx_level = stabilization_level - 1
    dtype = next(dit.parameters()).dtype
    x = prompt_latents.float()
    for i in range(P, total):
        chunk = noises[:, i - P : i - P + 1].float().clamp(-NOISE_ABS_MAX, NOISE_ABS_MAX)
        x = torch.cat([x, chunk], dim=1)  # (B, i+1, C, H, W)
        start = max(0, i + 1 - max_frames)
        for k, (level, level_next) in zip(
            range(ddim_steps, 0, -1), step_levels(ddim_steps), strict=True
        ):
            t = torch.full((B, i + 1), ctx_level, dtype=torch.long, device=device)
            t[:, -1] = level
            window = x[:, start:]
            v = dit(window.to(dtype), t[:, start:], actions[:, start : i + 1]).float()
            # Only the new frame is written back; context frames would get alpha_next = 1.
            abar_t = abar[level]
            abar_next = torch.ones((), device=device) if k == 1 else abar[level_next]
            x[:, -1] = ddim_update(window[:, -1], v[:, -1], abar_t, abar_next)
        logger.debug("reference frame %d done (window start %d)", i, start)
    return x
