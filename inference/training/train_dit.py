"""Phase 3: train the DiT on latent clips with Diffusion Forcing, and export the world.

Diffusion Forcing (Chen et al., 2024): every frame of a clip gets its own noise level, so one
causal model learns to denoise the next frame given context of any cleanliness. Half the clips
also take the play-time shape: a clean-ish prefix (levels 0..ctx_max_level, the range the engine's
stabilization level labels context with) followed by independently noised frames. Target: v
(x0 = sqrt(abar) x_t - sqrt(1 - abar) v), the engine's sampler convention, over the same 1000-step
sigmoid schedule. Weighting: plain v-MSE at high noise (where every played frame starts), capped
like min-SNR-5 at low noise so near-clean frames, whose v is almost pure noise, do not dominate.
bf16 autocast, fp32 master weights, EMA weights for export.

Dimension letters: B clips, T frames per clip, C/H/W latent shape, A action dim.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..actions import ActionSpace
from ..checkpoints import save_checkpoint
from ..config import WorldConfig
from ..models import DiT, build_autoencoder, build_dit
from ..sampler import sigmoid_alphas_cumprod
from .data import ClipSampler, Recording, one_hot
from .plots import plot_curves, save_grid
from .progress import Progress
from .rollout import decode, free_run, make_engine, teacher_forced
from .threads import ThreadTuner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiTTrainConfig:
    """DiT phase hyper-parameters (saved in dit.pt)."""

    steps: int = 40_000
    batch: int = 16
    clip: int = 8
    lr: float = 3e-4
    warmup: int = 300
    weight_decay: float = 0.01
    ema: float = 0.999
    min_snr: float = 5.0
    action_weight: float = 4.0  # loss weight of frames made by an action other than no-op
    play_prob: float = 0.5
    ctx_max_level: int = 100
    # Self-corrupted history: this share of play-shaped clips gets, in place of its true
    # context, the EMA model's own one-pass predictions of those frames from noise levels in
    # [self_context_min, self_context_max]. The target stays the true next frames, so the model
    # learns to pull a drifting, blurred history back to sharp frames instead of copying it.
    self_context_prob: float = 0.0
    self_context_min: int = 300
    self_context_max: int = 900
    grad_clip: float = 1.0
    save_every: int = 200
    export_minutes: float = 20.0
    minutes: float = 0.0  # > 0: also stop after this many wall-clock minutes


def sample_levels(
    B: int, T: int, cfg: DiTTrainConfig, gen: torch.Generator, levels: int = 1000
) -> tuple[Tensor, Tensor]:
    """(B,T) int64 noise levels, independent per frame, half with a clean-ish prefix; and the
    (B,T) bool mask of those prefixes (the play-shaped clips' context frames)."""
    t = torch.randint(levels, (B, T), generator=gen)
    play = torch.rand(B, generator=gen) < cfg.play_prob
    prefix = torch.randint(1, T, (B, 1), generator=gen)  # context length of play-shaped clips
    ctx = torch.randint(cfg.ctx_max_level + 1, (B, T), generator=gen)
    in_prefix = play[:, None] & (torch.arange(T)[None] < prefix)  # (B, T)
    return torch.where(in_prefix, ctx, t), in_prefix


@torch.no_grad()
def self_corrupt(
    ema: DiT,
    x0: Tensor,
    actions: Tensor,
    in_prefix: Tensor,
    abar: Tensor,
    cfg: DiTTrainConfig,
    gen: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """x0 (B,T,C,H,W) with some clips' prefix frames replaced by the model's own predictions,
    and the (B,T) bool mask of the replaced frames (they carry no loss: their truth is gone).

    One causal pass of the EMA model over the clip with every frame noised to its own level in
    [self_context_min, self_context_max]; its x0 estimates carry the model's typical errors
    (blur, invented or lost detail), the kind a free-running session feeds back to itself.
    """
    B, T = x0.shape[:2]
    pick = (torch.rand(B, generator=gen) < cfg.self_context_prob)[:, None] & in_prefix  # (B, T)
    if not bool(pick.any()):
        return x0, pick
    rows = pick.any(1)
    clean, acts = x0[rows], actions[rows]  # (b, T, C, H, W), (b, T, A)
    t = torch.randint(
        cfg.self_context_min, cfg.self_context_max + 1, clean.shape[:2], generator=gen
    )  # (b, T)
    a = abar[t][..., None, None, None]
    x_t = a.sqrt() * clean + (1 - a).sqrt() * torch.randn(clean.shape, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = ema(x_t, t, acts).float()
    predicted = a.sqrt() * x_t - (1 - a).sqrt() * v  # (b, T, C, H, W)
    out = x0.clone()
    out[rows] = torch.where(pick[rows][..., None, None, None], predicted, clean)
    return out, pick


def diffusion_loss(
    dit: DiT,
    x0: Tensor,
    actions: Tensor,
    t: Tensor,
    abar: Tensor,
    min_snr: float,
    gen: torch.Generator | None = None,
    action_weight: float = 1.0,
    skip: Tensor | None = None,
) -> Tensor:
    """SNR-capped v-prediction MSE of clips x0 (B,T,C,H,W) at levels t (B,T).

    Frames whose action is not the no-op (index 0) weigh action_weight: at the play cadence
    three frames in four are no-ops, and the picture change an action makes (which way the
    world scrolls) is what a player notices first; without the extra weight a small model long
    answers every move with the same blur.
    """
    a = abar[t][..., None, None, None]  # (B, T, 1, 1, 1)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v_target = a.sqrt() * eps - (1 - a).sqrt() * x0
    v = dit(x_t, t, actions).float()
    snr = abar[t] / (1 - abar[t])  # (B, T)
    # In x0 terms plain v-MSE weighs a frame by snr + 1; cap the snr part at min_snr. Plain
    # min-SNR for v (min(snr, g) / (snr + 1)) would give ~0 weight near t = 999, exactly where
    # play starts each frame and where the model must read context and action.
    weight = (snr.clamp(max=min_snr) + 1) / (snr + 1)
    weight = weight * (1 + (action_weight - 1) * (1 - actions[..., 0].float()))  # (B, T)
    per_frame = ((v - v_target) ** 2).flatten(2).mean(-1)  # (B, T)
    if skip is not None:
        weight = weight * (~skip)
    return (weight * per_frame).mean()


def _lr(cfg: DiTTrainConfig, step: int, warmup_from: int = 0) -> float:
    # Constant after warmup: runs are cut by wall-clock and resumed, so no schedule end exists;
    # the EMA weights play the part of the final decay. A run seeded from an export has a fresh
    # optimizer, so it warms up again from the seeded step.
    return cfg.lr * min(1.0, (step - warmup_from + 1) / cfg.warmup)


def train_dit(
    run: Path,
    world: WorldConfig,
    space: ActionSpace,
    train: Recording,
    test: Recording,
    latents: dict,
    cfg: DiTTrainConfig,
    export: Path | None = None,
    seed: int = 0,
) -> dict:
    """Train (or resume) the DiT phase; exports to `export` every cfg.export_minutes."""
    path = run / "dit.pt"
    torch.manual_seed(seed)
    dit = build_dit(world.dit)
    ema = copy.deepcopy(dit).requires_grad_(False)
    opt = torch.optim.AdamW(dit.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"step": 0, "losses": [], "cfg": asdict(cfg)}
    if path.exists():
        state = torch.load(path, weights_only=False)
        dit.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        if state["opt"] is not None:  # None: seeded from an export (seed_run.py)
            opt.load_state_dict(state["opt"])
        logger.info("resumed DiT at step %d", state["step"])
    sampler = ClipSampler(latents["train"], train, cfg.clip, space.dim, seed + state["step"])
    gen = torch.Generator().manual_seed(seed + 1 + state["step"])
    abar = sigmoid_alphas_cumprod(world.sampling.max_noise_level)
    started = last_export = time.monotonic()

    def save() -> None:
        state.update(model=dit.state_dict(), ema=ema.state_dict(), opt=opt.state_dict())
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)  # atomic

    dit.train()
    tuner = ThreadTuner(choices=tuple(sorted({1, torch.get_num_threads()})))
    with Progress(cfg.steps, "dit", start=state["step"]) as bar:
        while state["step"] < cfg.steps:
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, state["step"], state.get("warmup_from", 0))
            x0, actions = sampler.sample(cfg.batch)
            t, in_prefix = sample_levels(cfg.batch, cfg.clip, cfg, gen, len(abar))
            skip = None
            if cfg.self_context_prob > 0:
                x0, skip = self_corrupt(ema, x0, actions, in_prefix, abar, cfg, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = diffusion_loss(
                    dit, x0, actions, t, abar, cfg.min_snr, gen, cfg.action_weight, skip
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(dit.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), dit.parameters(), strict=True):
                    pe.lerp_(p, 1 - cfg.ema)
            state["step"] += 1
            state["losses"].append((state["step"], loss.item()))
            bar.update(1, loss=loss.item(), grad=float(norm), threads=torch.get_num_threads())
            tuner.tick()
            now = time.monotonic()
            out_of_time = cfg.minutes and now - started > cfg.minutes * 60
            if state["step"] % cfg.save_every == 0 or out_of_time:
                save()
            if export is not None and now - last_export > cfg.export_minutes * 60:
                save()
                export_world(run, world, space, export)
                dit_pngs(run, world, space, test, latents)
                last_export = time.monotonic()
            if out_of_time:
                logger.info("DiT time budget reached at step %d", state["step"])
                break
    save()
    dit_pngs(run, world, space, test, latents)
    return state


def load_world(run: Path, world: WorldConfig) -> tuple[WorldConfig, DiT, torch.nn.Module, int]:
    """The run's EMA DiT, AE and DiT step, with the scaling factor set from the AE phase."""
    ae_state = torch.load(run / "ae.pt", weights_only=False)
    ae = build_autoencoder(world.autoencoder)
    ae.load_state_dict(ae_state["model"])
    dit_state = torch.load(run / "dit.pt", weights_only=False)
    dit = build_dit(world.dit)
    dit.load_state_dict(dit_state["ema"])
    world = world.replace(scaling_factor=float(ae_state["scaling_factor"]))
    return world, dit.eval(), ae.eval(), int(dit_state["step"])


def export_world(run: Path, world: WorldConfig, space: ActionSpace, path: Path) -> Path:
    """Write the serving checkpoint (float32 weights, config, action space) atomically."""
    world, dit, ae, step = load_world(run, world)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_checkpoint(tmp, world, dit, ae, space, training_step=step)
    tmp.chmod(0o644)
    tmp.replace(path)  # the server may be reading the old file right now
    logger.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def dit_pngs(
    run: Path,
    world: WorldConfig,
    space: ActionSpace,
    test: Recording,
    latents: dict,
    context: int = 4,
    frames: int = 16,
    examples: int = 3,
) -> None:
    """dit_loss.png and dit_rollouts.png (truth / teacher-forced / free-running rows)."""
    state = torch.load(run / "dit.pt", weights_only=False)
    plot_curves(
        run / "dit_loss.png", {"v-loss (SNR-capped)": state["losses"]}, f"DiT step {state['step']}"
    )
    world, dit, ae, _ = load_world(run, world)
    engine = make_engine(world, dit, ae, space)
    lat = latents["test"].float()
    acts = one_hot(test.actions, space.dim)
    starts = test.clip_starts(context + frames)
    if not len(starts):
        logger.warning("no held-out segment holds %d frames: no rollout PNG", context + frames)
        return
    rows, labels = [], []
    for n, start in enumerate(starts[np.linspace(0, len(starts) - 1, examples).astype(int)]):
        sl = slice(start, start + context + frames)
        x, a = lat[sl], acts[sl]
        free = free_run(engine, x[:context], a[:context], a[context:], seed=n)
        forced = teacher_forced(engine, x, a, context, frames, seed=n)
        truth = test.frames[sl]
        names = [space.fields[int(i)].name for i in test.actions[sl]]
        rows += [
            list(truth),
            list(truth[:context]) + list(decode(engine, forced)),
            list(truth[:context]) + list(decode(engine, free)),
        ]
        moves = ",".join(
            name.replace("move_", "")[:2] for name in names[context:] if name != "noop"
        )
        labels += [f"truth {moves[:14]}", "teacher-forced", "free-running"]
    save_grid(run / "dit_rollouts.png", rows, labels)
    logger.info("wrote %s", run / "dit_rollouts.png")
