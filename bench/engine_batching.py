"""Engine throughput with 1, 2, 4, 8 concurrent sessions on the small CPU preset.

Each step advances every session one frame and decodes it to uint8 RGB: the whole per-frame
path a player waits for ("frame"); the "dit" part times the same without decoding. Sessions
start from random latents with random weights and are warmed past the 8-frame window, so every
timed frame pays the steady-state cost. Batch sizes are timed in interleaved rounds, so a burst
of load on the shared machine hits all of them alike. Prints a markdown table per variant.

    python bench/engine_batching.py                        # ~2 minutes on 2 cores
    python bench/engine_batching.py --dtypes float32 --modes rolling,exact --parts frame
"""

from __future__ import annotations

import argparse
import logging

import torch
from common import machine, print_table, setup, summary, timed  # also puts the repo on sys.path

from inference.config import EngineOptions, get_preset
from inference.engine import Engine

logger = logging.getLogger(__name__)


def engine_with_sessions(sessions: int, dtype: str, mode: str) -> Engine:
    engine = Engine.from_preset("small", EngineOptions(dtype=dtype, window_mode=mode), seed=0)
    gen = torch.Generator().manual_seed(0)
    for i in range(sessions):
        engine.add_session(
            f"player-{i}",
            seed=i,
            prompt_latents=torch.randn((1, *engine.latent_shape), generator=gen),
        )
    return engine


def random_inputs(engine: Engine, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One one-hot action per session, as a browser would send."""
    picks = torch.randint(0, engine.action_space.dim, (len(engine.sessions),), generator=gen)
    return {
        sid: torch.nn.functional.one_hot(p, engine.action_space.dim).float()
        for sid, p in zip(engine.sessions, picks, strict=True)
    }


def measure(args, dtype: str, mode: str, decode: bool) -> list[list[object]]:
    sizes = [int(s) for s in args.sessions.split(",")]
    engines = {n: engine_with_sessions(n, dtype, mode) for n in sizes}
    gen = torch.Generator().manual_seed(1)
    for engine in engines.values():
        for _ in range(args.warmup):
            engine.step(random_inputs(engine, gen))
    latencies: dict[int, list[float]] = {n: [] for n in sizes}
    per_round = max(1, args.frames // args.rounds)
    for _ in range(args.rounds):
        for n, engine in engines.items():
            for _ in range(per_round):
                actions = random_inputs(engine, gen)
                step = engine.step if decode else engine.step_latents
                latencies[n].append(timed(lambda s=step, a=actions: s(a)))
    rows, base = [], None
    for n in sizes:
        stats = summary(latencies[n])
        # From the median frame time: one stall of the shared machine (OpenMP barriers wait
        # for a busy core) must not decide the number. The mean-based total is shown too.
        total_fps = n / stats["median"]
        mean_fps = n * len(latencies[n]) / sum(latencies[n])
        base = base or total_fps
        rows.append(
            [
                n,
                f"{total_fps / n:.1f}",
                f"{total_fps:.1f}",
                f"{total_fps / base:.2f}x",
                f"{mean_fps:.1f}",
                f"{stats['median'] * 1e3:.1f}",
                f"{stats['p95'] * 1e3:.1f}",
                f"{stats['min'] * 1e3:.1f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,4,8", help="batch sizes, comma-separated")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    parser.add_argument("--modes", default="rolling", help="window modes: rolling,exact")
    parser.add_argument("--frames", type=int, default=80, help="timed frames per batch size")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved timing rounds")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames first")
    parser.add_argument(
        "--parts",
        default="frame,dit",
        help="frame: DiT + decode to uint8 (what a player gets); dit: DiT only",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup(args.threads)
    print(f"machine: {machine()}")
    print(
        "preset: small (64x64 RGB, conv AE f=4 -> 16x16x4, DiT d=192 3+3 blocks, "
        f"64 tokens/frame, window 8, {get_preset('small').sampling.ddim_steps} DDIM steps)\n"
    )
    for part in args.parts.split(","):
        for dtype in args.dtypes.split(","):
            for mode in args.modes.split(","):
                print(
                    f"{'DiT + decode' if part == 'frame' else 'DiT only'}, {dtype}, {mode} window:"
                )
                print_table(
                    [
                        "sessions",
                        "fps per session",
                        "total fps",
                        "total vs 1 session",
                        "total fps (mean)",
                        "latency p50 ms",
                        "latency p95 ms",
                        "latency min ms",
                    ],
                    measure(args, dtype, mode, part == "frame"),
                )
                print()


if __name__ == "__main__":
    main()
