"""Print the default model's engine speed: fps and p50/p95 frame time, 1 and 2 sessions.

    python bench/default_model.py [--checkpoint models/crafter-small.safetensors] [--threads 2]
    python bench/default_model.py --dtypes float32,bfloat16 --ddim-steps 4,3   # compare variants
    python bench/default_model.py --context-schedules "model;none;600,300,15"  # dynamic noising
    python bench/default_model.py --context-schedules "none;trajectory"  # trajectory context

Frames start from the committed "meadow" scene; decode is included, as a player sees it. Each
variant (dtype x denoising steps x context schedule) is timed in interleaved rounds, so a burst
of load on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
from common import machine, print_table  # also puts the repo on sys.path
from PIL import Image

from inference import SHIPPED_CHECKPOINT
from inference.checkpoints import load_checkpoint
from inference.config import EngineOptions
from inference.dtypes import choose_dtype
from inference.engine import Engine

logger = logging.getLogger(__name__)

SCENE = Path(__file__).resolve().parents[1] / "models" / "worlds" / "meadow" / "prompt_0.png"


Schedule = tuple[tuple[int, ...] | None, bool]  # (levels or None for the model's, trajectory)


def build(checkpoint: str, dtype: str, steps: int | None, schedule: Schedule) -> Engine:
    world = load_checkpoint(checkpoint)
    config = world.config
    if steps is not None:
        config = config.with_sampling(ddim_steps=steps)
    levels, trajectory = schedule
    if levels is not None:
        config = config.with_sampling(context_schedule=levels, trajectory_context=trajectory)
    return Engine(
        config, world.dit, world.autoencoder, world.action_space, EngineOptions(dtype=dtype)
    )


def warmed(
    checkpoint: str, dtype: str, steps: int | None, schedule: Schedule, sessions: int
) -> Engine:
    """An engine with `sessions` sessions from the meadow scene, its window already full."""
    engine = build(checkpoint, dtype, steps, schedule)
    prompt = np.asarray(Image.open(SCENE).convert("RGB"))[None]  # (1, 64, 64, 3)
    for i in range(sessions):
        engine.add_session(f"s{i}", prompt_frames=prompt, seed=i)
    for _ in range(10):  # fill the window: steady state from here
        engine.step()
    return engine


def main() -> None:
    """CLI: one table row per variant and session count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", default="auto", help="comma list; auto = what a worker picks")
    parser.add_argument("--ddim-steps", default="", help="comma list; empty = the checkpoint's")
    parser.add_argument(
        "--context-schedules",
        default="model",
        help="';' list of dynamic-noising schedules (levels per pass, e.g. "
        "600,300,15), 'none' (clean context), 'model' (the checkpoint's) or 'trajectory' "
        "(trajectory context; 'trajectory:332,100,100' with levels)",
    )
    parser.add_argument("--frames", type=int, default=200, help="timed frames per variant")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtypes = [choose_dtype("cpu", d) for d in args.dtypes.split(",")]
    steps = [int(s) for s in args.ddim_steps.split(",") if s] or [None]
    if any(s is not None and s < 1 for s in steps):
        parser.error("--ddim-steps must be at least 1")
    try:
        schedules = [_schedule(text) for text in args.context_schedules.split(";")]
    except ValueError:
        parser.error(
            f"--context-schedules: {args.context_schedules!r} is not a ';' list of "
            "comma-separated levels, 'none', 'model' or 'trajectory[:levels]'"
        )
    variants = {}
    for dtype in dtypes:
        for k in steps:
            for schedule in schedules:
                for sessions in (1, 2):
                    try:
                        engine = warmed(args.checkpoint, dtype, k, schedule, sessions)
                    except ValueError as exc:
                        parser.error(str(exc))
                    sampling = engine.config.sampling
                    levels = (
                        ",".join(map(str, engine._ctx_levels))
                        if sampling.trajectory_context
                        else ""
                    )
                    shown = ",".join(map(str, sampling.context_schedule)) or "none"
                    key = (
                        dtype,
                        sampling.ddim_steps,
                        f"trajectory {levels}" if levels else shown,
                        sessions,
                    )
                    variants[key] = (engine, [])
    for _ in range(args.rounds):
        for engine, times in variants.values():
            for _ in range(max(1, args.frames // args.rounds)):
                start = time.perf_counter()
                engine.step()
                times.append(time.perf_counter() - start)
    print(f"machine: {machine()}\ncheckpoint: {args.checkpoint}\n")
    rows = []
    for (dtype, k, schedule, sessions), (_, times) in variants.items():
        ms = np.array(times) * 1000
        fps = 1000 / np.median(ms)
        rows.append(
            [
                dtype,
                k,
                schedule,
                sessions,
                f"{fps:.1f}",
                f"{fps * sessions:.1f}",
                f"{np.median(ms):.1f}",
                f"{np.percentile(ms, 95):.1f}",
            ]
        )
    print_table(
        [
            "dtype",
            "DDIM steps",
            "context schedule",
            "sessions",
            "fps per session",
            "frames/s in total",
            "p50 ms",
            "p95 ms",
        ],
        rows,
    )


def _schedule(text: str) -> Schedule:
    # 'model': the checkpoint's own; 'none': clean context; else levels per pass.
    trajectory = text.startswith("trajectory")
    if trajectory:
        _, _, text = text.partition(":")
        text = text or "none"
    if text == "model":
        return None, False
    if text == "none":
        return (), trajectory
    return tuple(int(v) for v in text.split(",")), trajectory


if __name__ == "__main__":
    main()
