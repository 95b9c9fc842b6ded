"""Trajectory context (SamplingConfig.trajectory_context): dynamic noising from each frame's own
denoising passes, at the cost of plain sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inference.config import get_preset
from inference.sampler import ddim_update, sigmoid_alphas_cumprod, step_levels
from tests.inference.helpers import make_engine, random_actions, random_latents, run_engine

TOL = 1e-5


def trajectory_config(depth: int | None = None, schedule: tuple[int, ...] = ()):
    config = get_preset("tiny").with_sampling(
        trajectory_context=True, window_mode="rolling", context_schedule=schedule
    )
    if depth is not None:
        config = config.replace(dit=dataclasses.replace(config.dit, depth=depth))
    return config


def _whole_window_reference(engine, prompt, actions, seed: int) -> torch.Tensor:
    """Every pass as one uncached forward over the window, each context frame entering at the
    level the pass reads: its own latent at that level from the pass that denoised it (prompt
    frames, which have no trajectory, forward-diffused with the noise drawn at the join), or
    clean in the last pass. Exact for a one-block DiT, whose K/V are per-frame functions of
    the frame's input, so this checks the engine's stream bookkeeping through window slides.
    """
    sampling = engine.config.sampling
    levels = step_levels(sampling.ddim_steps)
    clean_label = sampling.stabilization_level - 1
    schedule = engine._ctx_levels  # what each pass reads (checked by the validation test)
    noisy = sorted(set(schedule) - {clean_label})
    abar = sigmoid_alphas_cumprod()
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(prompt.shape, generator=gen)
    # history[j][level]: frame j's latent as context at that level; "clean" for the last pass.
    history = [
        {level: abar[level].sqrt() * p + (1 - abar[level]).sqrt() * e for level in noisy}
        | {"clean": p}
        for p, e in zip(prompt, eps, strict=True)
    ]
    keep = engine.window - 1
    out = []
    for i in range(len(prompt), len(actions)):
        x = torch.randn(engine.latent_shape, generator=gen).clamp(-20, 20)[None, None]
        context = history[-keep:]  # frames i - T .. i - 1
        a = actions[None, i - len(context) : i + 1]  # (1, T + 1, A)
        entry = {}
        for k, (level, level_next) in enumerate(levels):
            last = k == len(levels) - 1
            label = schedule[k]
            key = "clean" if label == clean_label else label
            frames = torch.stack([h[key] for h in context])[None]  # (1, T, C, H, W)
            t = torch.tensor([[label] * len(context) + [level]])
            if k:
                entry[level] = x[0, 0]  # this frame's latent at this pass's input level
            v = engine.dit(torch.cat((frames, x), 1), t, a)[:, -1:]
            x = ddim_update(x, v, abar[level], torch.ones(()) if last else abar[level_next])
        history.append(entry | {"clean": x[0, 0]})
        out.append(x[0, 0])
    return torch.stack(out)


@pytest.mark.parametrize("schedule", [(), (332, 14, 14), (665, 14, 14)])
def test_a_one_block_model_matches_the_whole_window_reference_through_slides(schedule):
    engine = make_engine(trajectory_config(depth=1, schedule=schedule), seed=2)
    prompt = random_latents(engine, 2, 5)
    actions = random_actions(3 * engine.window, engine.action_space.dim, 6)
    engine.add_session("s", prompt_latents=prompt, prompt_actions=actions[:2], seed=9)
    got = run_engine(engine, "s", actions, 2)
    ref = _whole_window_reference(engine, prompt, actions, seed=9)
    assert (got - ref).abs().max().item() <= TOL
    assert ref.abs().max().item() > 0.5  # a real signal


def test_trajectory_context_costs_no_pass_but_holds_a_stream_per_level():
    engine = make_engine(trajectory_config())
    plain = make_engine(get_preset("tiny").with_sampling(window_mode="rolling"))
    passes = {"trajectory": 0, "plain": 0}
    for name, e in (("trajectory", engine), ("plain", plain)):
        e.add_session("s", prompt_latents=random_latents(e, 1, 0), seed=1)
        step = e._step_fn

        def counted(*args, _step=step, _name=name):
            passes[_name] += 1
            return _step(*args)

        e._step_fn = counted
        for _ in range(2 * e.window):
            e.step_latents()
    assert passes["trajectory"] == passes["plain"] == 3 * 2 * engine.window
    assert engine.cache_bytes_per_session() == 3 * plain.cache_bytes_per_session()


def test_batched_trajectory_sessions_match_each_session_alone():
    config = trajectory_config()
    engine = make_engine(config)
    frames = 2 * engine.window + 1
    plans = {  # different prompt lengths: ragged contexts, so per-row slots in the copies
        "a": (random_latents(engine, 1, 10), random_actions(frames, 25, 11), 12),
        "b": (random_latents(engine, 3, 20), random_actions(frames, 25, 21), 22),
    }
    for sid, (prompt, _, seed) in plans.items():
        engine.add_session(sid, prompt_latents=prompt, seed=seed)
    batched = {sid: [] for sid in plans}
    for i in range(frames):
        for sid, latent in engine.step_latents({s: p[1][i] for s, p in plans.items()}).items():
            batched[sid].append(latent)
    for sid, (prompt, actions, seed) in plans.items():
        alone = make_engine(config)
        alone.add_session(sid, prompt_latents=prompt, seed=seed)
        solo = run_engine(alone, sid, actions, 0)
        assert (torch.stack(batched[sid]) - solo).abs().max().item() <= TOL, sid


def test_trajectory_context_changes_what_a_deep_model_makes():
    prompt_seed, actions = 3, random_actions(12, 25, 4)
    runs = {}
    for traj in (False, True):
        engine = make_engine(trajectory_config().with_sampling(trajectory_context=traj))
        engine.add_session("s", prompt_latents=random_latents(engine, 1, prompt_seed), seed=5)
        runs[traj] = run_engine(engine, "s", actions, 0)
    assert torch.isfinite(runs[True]).all()
    assert (runs[True] - runs[False]).abs().max().item() > 1e-2


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"window_mode": "exact"}, "rolling"),
        ({"stabilization_level": 333}, "differ from"),  # clean label 332 = pass 2's input
        ({"context_schedule": (665, 14)}, "one level per pass"),
        ({"context_schedule": (665, 332, 332)}, "ending on the clean level 14"),
        ({"context_schedule": (300, 100, 14)}, "pass 0 can read"),  # not an input level
        ({"context_schedule": (665, 665, 14)}, "pass 1 can read"),  # its own, not a later one
        ({"context_schedule": (14, 332, 14)}, "the later ones must too"),
    ],
)
def test_trajectory_context_refuses_settings_it_cannot_honour(changes, message):
    assert make_engine(trajectory_config())._ctx_levels == (665, 332, 14)  # the default
    with pytest.raises(ValueError, match=message):
        make_engine(trajectory_config().with_sampling(**changes))
