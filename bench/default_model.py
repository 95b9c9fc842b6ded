"""Print the default model's engine speed: fps and p50/p95 frame time, 1 and 2 sessions.

    python bench/default_model.py [--checkpoint models/crafter-small.safetensors] [--threads 2]

Frames start from the committed "meadow" scene; decode is included, as a player sees it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inference.engine_runtime import DEFAULT_CHECKPOINT, EngineRuntime
from inference.training.evaluate import eval_speed

logger = logging.getLogger(__name__)

SCENE = Path(__file__).resolve().parents[1] / "models" / "worlds" / "meadow" / "prompt_0.png"


def main() -> None:
    """CLI: one line per session count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runtime = EngineRuntime(args.checkpoint, dtype=args.dtype, threads=args.threads)
    runtime.warm()
    prompt = np.asarray(Image.open(SCENE).convert("RGB"))[None]  # (1, 64, 64, 3)
    print(f"{args.checkpoint}: {runtime.dtype}, {args.threads} thread(s)")
    for sessions in (1, 2):
        s = eval_speed(runtime.engine, prompt, sessions, args.frames)
        print(f"{sessions} session(s): {s['fps']:.1f} steps/s ({s['fps'] * sessions:.1f} frames/s)"
              f"  p50 {s['p50_ms']:.1f} ms  p95 {s['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
