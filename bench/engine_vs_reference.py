"""Reference loop vs KV-cached engine per generated frame, at the Oasis token geometry.

Oasis geometry: 16x18x32 latents, patch 2 -> 144 tokens/frame, window 32, 10 DDIM steps; the
width and depth are cut down so the reference loop finishes on two CPU cores. Every variant
generates the frame that fills the window (31 context frames), the worst case of the reference;
"after the slide" rows generate the frames after it. Also measures how far the rolling window
drifts from the exact one. Prints markdown tables.

    python bench/engine_vs_reference.py                      # ~1.5 minutes on 2 cores
    python bench/engine_vs_reference.py --hidden 256 --dtypes float32
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from common import machine, print_table, setup, timed  # also puts the repo on sys.path

from inference.config import (
    DiTConfig,
    EngineOptions,
    SamplingConfig,
    ViTAutoencoderConfig,
    WorldConfig,
)
from inference.engine import Engine
from inference.models import build_autoencoder, build_dit, randomize_
from inference.sampler import rollout

logger = logging.getLogger(__name__)

SPEC_CACHED_RATIO = 29.1  # docs/oasis-model.md §5: 37.78 TF / 1.299 TF per frame at 608M
SPEC_EXACT_SLIDE_RATIO = 7.8


def world(args, window_mode: str) -> WorldConfig:
    """Oasis geometry at the benchmark's width and depth; a token-sized VAE (never decoded)."""
    dit = DiTConfig(
        hidden_size=args.hidden,
        depth=args.depth,
        num_heads=args.hidden // 64,
        max_frames=args.window,
    )
    vae = ViTAutoencoderConfig(
        enc_dim=64, enc_depth=1, enc_heads=1, dec_dim=64, dec_depth=1, dec_heads=1
    )
    return WorldConfig(
        "bench",
        dit,
        vae,
        0.07843137255,
        SamplingConfig(ddim_steps=args.steps, window_mode=window_mode),
    )


def flops(cfg: DiTConfig, frames: int, keys: int) -> float:
    """FLOPs of a DiT pass over `frames` frames each attending over `keys` frames in time."""
    N, D, L = cfg.tokens_per_frame, cfg.hidden_size, cfg.depth
    patch = cfg.patch_size**2 * cfg.in_channels
    per_frame = L * (24 * N * D * D + 2 * N * N * D + 12 * D * D + 2 * N * keys * D)
    embed = 2 * N * patch * D + 2 * D * D + 256 * D + D * D + cfg.external_cond_dim * D
    return 2.0 * frames * (per_frame + embed)


def reference_flops(cfg: DiTConfig, steps: int) -> float:
    # The spec counts SDPA as the full T x T square: on average T keys per frame.
    return steps * flops(cfg, cfg.max_frames, cfg.max_frames)


def make_engine(args, mode: str, dtype: str, seed: int) -> Engine:
    cfg = world(args, mode)
    dit = randomize_(build_dit(cfg.dit), seed, std=args.std)
    ae = build_autoencoder(cfg.autoencoder)
    return Engine(cfg, dit, ae, options=EngineOptions(dtype=dtype))


def inputs(engine: Engine, frames: int, seed: int):
    """31 prompt latents, `frames` action rows (prompt rows first) and the session's seed."""
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randn((engine.window - 1, *engine.latent_shape), generator=gen)
    actions = (torch.rand(frames, engine.action_space.dim, generator=gen) > 0.8).float()
    return prompt, actions, seed + 1


def time_reference(args, engine: Engine, prompt, actions, seed) -> tuple[float, torch.Tensor]:
    """The reference loop generating the window-filling frame; seconds and its latent."""
    noise = torch.randn((1, 1, *engine.latent_shape), generator=torch.Generator().manual_seed(seed))
    result = {}

    def run():
        result["x"] = rollout(
            engine.dit,
            prompt[None],
            actions[None, : engine.window],
            noise,
            args.steps,
            engine.window,
        )

    seconds = [timed(run) for _ in range(args.repeats)]
    return min(seconds), result["x"][0, -1]


def time_engine(args, engine: Engine, prompt, actions, seed) -> dict:
    """Window-filling frame (a fresh session each repeat, prefill untimed), then the slide."""
    ctx = engine.window - 1
    filling, latent = [], None
    for rep in range(args.repeats + 1):  # repeat 0 warms up
        engine.add_session("s", prompt_latents=prompt, prompt_actions=actions[:ctx], seed=seed)
        start = time.perf_counter()
        latent = engine.step_latents({"s": actions[ctx]})["s"]
        if rep:
            filling.append(time.perf_counter() - start)
        if rep < args.repeats:
            engine.remove_session("s")
    after = [timed(lambda a=a: engine.step_latents({"s": a})) for a in actions[ctx + 1 :]]
    engine.remove_session("s")
    return {"fill": min(filling), "slide": min(after), "latent": latent}


def drift(args) -> list[list[object]]:
    """Max |rolling - exact| per frame after the slide, for two weight scales."""
    rows = []
    for label, std in (("fixture-style N(0, 0.02)", 0.02), ("unit-gain N(0, 1/fan_in)", None)):
        runs = {}
        for mode in ("exact", "rolling"):
            engine = make_engine(
                argparse.Namespace(**{**vars(args), "std": std}), mode, "float32", seed=3
            )
            prompt, actions, seed = inputs(engine, args.window - 1 + args.drift_frames, 1)
            ctx = engine.window - 1
            engine.add_session("d", prompt_latents=prompt, prompt_actions=actions[:ctx], seed=seed)
            runs[mode] = torch.stack([engine.step_latents({"d": a})["d"] for a in actions[ctx:]])
        diff = (runs["rolling"] - runs["exact"]).flatten(1)
        scale = runs["exact"].flatten(1).pow(2).mean(1).sqrt()
        rel = diff.pow(2).mean(1).sqrt() / scale
        per_frame = diff.abs().amax(1)  # frame 0 fills the window: identical in both modes
        rows.append(
            [
                label,
                f"{per_frame[0]:.1e}",
                f"{per_frame[1]:.2e}",
                f"{per_frame[1:].max():.2e}",
                f"{rel[1:].max():.2e}",
                f"{runs['exact'].abs().max():.2f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512, help="DiT width (multiple of 64)")
    parser.add_argument("--depth", type=int, default=2, help="DiT blocks")
    parser.add_argument("--window", type=int, default=32, help="max_frames")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (min is shown)")
    parser.add_argument("--slide-frames", type=int, default=3, help="frames timed after slide")
    parser.add_argument("--drift-frames", type=int, default=8, help="frames compared for drift")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="engine dtypes")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.std = None  # unit-gain random weights for the timing runs
    setup(args.threads)
    print(f"machine: {machine()}")
    cfg = world(args, "exact").dit
    print(
        f"geometry: {cfg.tokens_per_frame} tokens/frame, window {args.window}, "
        f"{args.steps} steps, width {args.hidden}, depth {args.depth}\n"
    )

    base = make_engine(args, "exact", "float32", seed=0)
    prompt, actions, seed = inputs(base, args.window + args.slide_frames, 0)
    ref_s, ref_latent = time_reference(args, base, prompt, actions, seed)
    ctx = args.window - 1
    cached_flops = (args.steps + 1) * flops(cfg, 1, args.window)
    exact_flops = flops(cfg, ctx, ctx) + args.steps * flops(cfg, 1, args.window)
    ref_flops = reference_flops(cfg, args.steps)
    rows = [
        [
            f"reference loop ({args.steps} x whole window)",
            "float32",
            f"{ref_s:.3f}",
            "1.0x",
            "1.0x",
            "1x",
            "-",
        ]
    ]
    for dtype in args.dtypes.split(","):
        results = {
            mode: time_engine(args, make_engine(args, mode, dtype, seed=0), prompt, actions, seed)
            for mode in ("exact", "rolling")
        }
        fill = min(r["fill"] for r in results.values())
        err = (results["exact"]["latent"].float() - ref_latent).abs().max().item()
        rows += [
            [
                "engine, cached (window-filling frame)",
                dtype,
                f"{fill:.3f}",
                f"{ref_s / fill:.1f}x",
                f"{ref_flops / cached_flops:.1f}x",
                f"{SPEC_CACHED_RATIO}x",
                f"{err:.1e}",
            ],
            [
                "engine, rolling after the slide",
                dtype,
                f"{results['rolling']['slide']:.3f}",
                f"{ref_s / results['rolling']['slide']:.1f}x",
                f"{ref_flops / cached_flops:.1f}x",
                f"{SPEC_CACHED_RATIO}x",
                "approx.",
            ],
            [
                "engine, exact after the slide",
                dtype,
                f"{results['exact']['slide']:.3f}",
                f"{ref_s / results['exact']['slide']:.1f}x",
                f"{ref_flops / exact_flops:.1f}x",
                f"{SPEC_EXACT_SLIDE_RATIO}x",
                "-",
            ],
        ]
    print_table(
        [
            "variant",
            "dtype",
            "s/frame (min)",
            "measured speed-up",
            "FLOP ratio (this config)",
            "FLOP ratio (spec, 608M)",
            "max abs diff vs ref",
        ],
        rows,
    )
    print(f"\nreference: {ref_flops / ref_s / 1e9:.0f} GFLOP/s effective")
    print(f"\nmax abs(rolling - exact) over {args.drift_frames} frames after the slide, float32:")
    print_table(
        [
            "weights",
            "window-filling frame",
            "first slid frame",
            "any slid frame",
            "relative RMS (max)",
            "max abs latent",
        ],
        drift(args),
    )


if __name__ == "__main__":
    main()
