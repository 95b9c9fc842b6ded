"""The reference sampling loop's schedule and bookkeeping (docs/oasis-model.md §4)."""

from __future__ import annotations

import pytest
import torch

from inference.sampler import (
    ddim_update,
    noise_levels,
    rollout,
    sigmoid_alphas_cumprod,
    step_levels,
)
from tests.inference.helpers import make_engine, noise_frames, random_actions, random_latents


@pytest.mark.parametrize(
    "t, alpha_bar",
    [
        (0, 0.99969971),
        (14, 0.99532050),
        (99, 0.96050709),
        (199, 0.89567977),
        (499, 0.49999979),
        (899, 0.03949277),
        (999, 3.00283e-7),
    ],
)
def test_the_schedule_matches_the_spec_table(t, alpha_bar):
    assert sigmoid_alphas_cumprod()[t].item() == pytest.approx(alpha_bar, rel=2e-6)


def test_alpha_bar_is_accumulated_in_float32():
    abar = sigmoid_alphas_cumprod()
    assert abar.dtype == torch.float32 and abar.shape == (1000,)
    assert torch.all(abar[1:] < abar[:-1])


def test_noise_levels_truncate_like_the_reference():
    assert noise_levels(10) == [-1, 99, 199, 299, 399, 499, 599, 699, 799, 899, 999]
    assert noise_levels(3) == [-1, 332, 665, 999]
    assert step_levels(3) == [(999, 665), (665, 332), (332, 332)]


def test_the_last_ddim_step_returns_the_x0_prediction():
    x, v = torch.randn(4, 4), torch.randn(4, 4)
    abar = sigmoid_alphas_cumprod()[99]
    x0 = ddim_update(x, v, abar, torch.ones(()))
    assert torch.allclose(x0, abar.sqrt() * x - (1 - abar).sqrt() * v)


def test_rollout_keeps_the_prompt_and_fills_every_frame():
    engine = make_engine("tiny")
    prompt = random_latents(engine, 2, 0)[None]
    out = rollout(
        engine.dit,
        prompt,
        random_actions(6, 25, 1)[None],
        noise_frames(engine, 4, 2)[None],
        ddim_steps=2,
        max_frames=4,
    )
    assert out.shape == (1, 6, *engine.latent_shape)
    assert torch.equal(out[:, :2], prompt)
    assert torch.isfinite(out).all() and not torch.equal(out[:, 2], out[:, 3])


def test_rollout_clamps_the_fresh_noise_to_twenty():
    engine = make_engine("tiny")
    prompt, actions = random_latents(engine, 1, 0)[None], random_actions(2, 25, 1)[None]
    noise = noise_frames(engine, 1, 2)[None]
    loud = noise.clone()
    loud[0, 0, 0, 0, 0] = 1e6
    clamped = loud.clone()
    clamped[0, 0, 0, 0, 0] = 20.0
    a = rollout(engine.dit, prompt, actions, loud, ddim_steps=2, max_frames=4)
    b = rollout(engine.dit, prompt, actions, clamped, ddim_steps=2, max_frames=4)
    assert torch.equal(a, b)


def test_rollout_refuses_a_noise_count_that_does_not_fit():
    engine = make_engine("tiny")
    with pytest.raises(ValueError, match="noise frames"):
        rollout(
            engine.dit,
            random_latents(engine, 1, 0)[None],
            random_actions(4, 25, 1)[None],
            noise_frames(engine, 2, 2)[None],
            ddim_steps=2,
            max_frames=4,
        )
