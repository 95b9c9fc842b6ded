"""The full oasis-500m preset on CPU with random weights: seconds per frame and cache memory.

Builds the 608M DiT and the 229M ViT VAE (random weights; the real files are not on this
machine), starts one session from a random 360x640 prompt and times a couple of frames of the
cached engine. The default uses fewer DDIM steps than the 10 of generate.py to keep the run
short; the table also extrapolates to 10 steps from the measured per-pass time.

    python bench/oasis500m_cpu.py                            # ~2-3 minutes on 2 cores
    python bench/oasis500m_cpu.py --steps 10 --frames 1 --dtypes float32
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

import numpy as np
from common import machine, print_table, setup, timed  # also puts the repo on sys.path

from inference.config import EngineOptions, get_preset
from inference.engine import Engine
from inference.models import build_autoencoder, build_dit, randomize_

logger = logging.getLogger(__name__)

SPEC_T1_FORWARD_S = 3.44  # docs/oasis-model.md §5, fp32 DiT forward at T=1 on this machine kind


def build(steps: int, dtype: str) -> tuple[Engine, float]:
    start = time.perf_counter()
    cfg = get_preset("oasis-500m")
    cfg = cfg.with_sampling(ddim_steps=steps)
    dit = randomize_(build_dit(cfg.dit), 0)
    vae = randomize_(build_autoencoder(cfg.autoencoder), 1)
    return Engine(cfg, dit, vae, options=EngineOptions(dtype=dtype)), time.perf_counter() - start


def measure(args, dtype: str) -> list[object]:
    engine, build_s = build(args.steps, dtype)
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 256, (1, *engine.frame_size, 3), dtype=np.uint8)
    join_s = timed(lambda: engine.add_session("player", prompt_frames=prompt, seed=0))
    latent = engine.step_latents()["player"]  # warm-up frame, untimed
    dit_s = min(timed(engine.step_latents) for _ in range(args.frames))
    decode_s = min(timed(lambda: engine.decode_latents(latent[None])) for _ in range(3))
    frame_s = min(timed(engine.step) for _ in range(args.frames))
    pass_s = dit_s / (args.steps + 1)  # per frame-pass: K steps plus the committed frame
    at_10 = 11 * pass_s + decode_s
    cache_mb = engine.cache_bytes_per_session() / 2**20
    per_frame_mb = cache_mb / engine.window
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return [
        dtype,
        args.steps,
        f"{frame_s:.1f}",
        f"{pass_s:.2f}",
        f"{decode_s:.2f}",
        f"{at_10:.1f}",
        f"{cache_mb:.0f}",
        f"{per_frame_mb * (engine.window - 1):.0f}",
        f"{per_frame_mb:.1f}",
        f"{join_s:.1f}",
        f"{build_s:.0f}",
        f"{rss_gb:.1f}",
        "yes" if bool(latent.isfinite().all()) else "NO",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="DDIM steps (generate.py: 10)")
    parser.add_argument("--frames", type=int, default=2, help="timed frames (min is shown)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup(args.threads)
    print(f"machine: {machine()}")
    print(
        "preset: oasis-500m (DiT 608M, 144 tokens/frame, window 32; ViT VAE 229M, 360x640), "
        "random weights, cached engine, one session, decode to uint8 included\n"
    )
    rows = [measure(args, dtype) for dtype in args.dtypes.split(",")]
    print_table(
        [
            "dtype",
            "steps",
            "s/frame (DiT + decode)",
            "s per DiT pass",
            "decode s",
            "s/frame at 10 steps (extrapolated)",
            "cache MiB/session (allocated)",
            "cache MiB/session (31 context frames)",
            "cache MiB per frame",
            "join s",
            "build s",
            "peak RSS GiB",
            "finite latents",
        ],
        rows,
    )
    print(
        f"\ndocs/oasis-model.md §5 measured a fp32 T=1 forward at {SPEC_T1_FORWARD_S} s on this "
        "machine kind; the cached pass also attends over the cached frames (here 1-2)."
    )


if __name__ == "__main__":
    main()
