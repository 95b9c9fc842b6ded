"""Evaluate an exported world model on held-out recordings and print the issue's numbers.

    python -m inference.training.evaluate --checkpoint models/crafter-small.safetensors

1. autoencoder reconstruction PSNR on held-out frames (target >= 26 dB);
2. free-running prediction PSNR at horizons 1, 4, 16 from 4 true context frames with the true
   actions, against repeating the last true frame (target: beat it at every horizon); also over
   the windows in which the player moved, since at the play cadence most frames are no-ops on
   which the last frame is nearly exact (and the model cannot beat the autoencoder's PSNR);
3. action response: from the true context, the direction the predicted picture shifts under
   the teacher's move must match the direction the teacher's picture shifted (target >= 90 %);
   also, from the same contexts, all four moves against the direction each should scroll;
4. engine speed (fps, p50/p95 frame time) for 1 session and 2 batched, decode included.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import load_checkpoint
from ..config import EngineOptions
from ..dtypes import choose_dtype
from ..engine import Engine
from . import long_session
from .data import Recording, load_recording, one_hot, to_images
from .rollout import decode, free_run
from .train_ae import psnr, reconstruct

logger = logging.getLogger(__name__)

TILE = 7  # Crafter at 64 px: 64 // 9 px per tile
WORLD_ROWS = 7 * TILE  # the top 7 tile rows show the world; the bottom 2 are the inventory
# Walking left scrolls the world right, and so on (dx, dy of the picture, in tiles).
MOVE_SHIFT = {"move_left": (1, 0), "move_right": (-1, 0), "move_up": (0, 1), "move_down": (0, -1)}
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def frame_shift(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """The whole-tile scroll (dx, dy) among none/4 directions that best maps before to after."""
    a = before[:WORLD_ROWS].astype(np.float32)
    b = after[:WORLD_ROWS].astype(np.float32)
    best, best_err = (0, 0), float("inf")
    for dx, dy in SHIFTS:
        sx, sy = dx * TILE, dy * TILE
        h, w = a.shape[:2]
        # after[y, x] = before[y - sy, x - sx] over the region both frames show
        ya, yb = slice(max(0, -sy), h - max(0, sy)), slice(max(0, sy), h - max(0, -sy))
        xa, xb = slice(max(0, -sx), w - max(0, sx)), slice(max(0, sx), w - max(0, -sx))
        err = float(np.abs(b[yb, xb] - a[ya, xa]).mean())
        if err < best_err:
            best, best_err = (dx, dy), err
    return best


def psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255**2
    return float(10 * np.log10(1 / max(mse, 1e-10)))


def eval_autoencoder(engine: Engine, test: Recording, count: int = 2000) -> float:
    """Mean PSNR of decode(encode(frame)) over held-out frames."""
    pick = np.linspace(0, len(test) - 1, min(count, len(test))).astype(int)
    images = to_images(test.frames[pick])
    recon = reconstruct(engine.autoencoder, images)
    return float(psnr(recon, images).mean())


def eval_prediction(
    engine: Engine,
    test: Recording,
    latents: torch.Tensor,
    cases: int = 96,
    context: int = 4,
    horizons: tuple[int, ...] = (1, 4, 16),
) -> dict:
    """Mean PSNR of free-running frames at each horizon, and of repeating the last true frame."""
    acts = one_hot(test.actions, engine.action_space.dim)
    starts = test.clip_starts(context + max(horizons))
    starts = starts[np.linspace(0, len(starts) - 1, min(cases, len(starts))).astype(int)]
    moves = [i for i, f in enumerate(engine.action_space.fields) if f.name in MOVE_SHIFT]
    rows = []  # (horizon, moved within the horizon, model PSNR, repeat-last PSNR)
    for n, s in enumerate(starts):
        end = s + context + max(horizons)
        pred = decode(
            engine,
            free_run(
                engine,
                latents[s : s + context],
                acts[s : s + context],
                acts[s + context : end],
                seed=n,
            ),
        )
        for h in horizons:
            truth = test.frames[s + context + h - 1]
            moved = bool(np.isin(test.actions[s + context : s + context + h], moves).any())
            rows.append(
                (
                    h,
                    moved,
                    psnr_np(pred[h - 1], truth),
                    psnr_np(test.frames[s + context - 1], truth),
                )
            )
    out = {}
    for h in horizons:
        every = [(m, r) for hh, _, m, r in rows if hh == h]
        moving = [(m, r) for hh, mv, m, r in rows if hh == h and mv]
        out[h] = {
            "model": float(np.mean([m for m, _ in every])),
            "repeat": float(np.mean([r for _, r in every])),
            "moving_cases": len(moving),
            "model_moving": float(np.mean([m for m, _ in moving])) if moving else None,
            "repeat_moving": float(np.mean([r for _, r in moving])) if moving else None,
        }
    return out


def eval_actions(
    engine: Engine, test: Recording, latents: torch.Tensor, cases: int = 300, context: int = 7
) -> dict:
    """Agreement of predicted scroll directions with the teacher's (true move, and all moves)."""
    space = engine.action_space
    names = [f.name for f in space.fields]
    moves = [names.index(m) for m in MOVE_SHIFT]
    acts = one_hot(test.actions, space.dim)
    starts = test.clip_starts(context + 1)
    found = []
    for s in starts:  # teacher moves that scrolled the picture (not walked into a wall)
        i = s + context
        if test.actions[i] in moves and frame_shift(test.frames[i - 1], test.frames[i]) != (0, 0):
            found.append(s)
    found = np.array(found)[np.linspace(0, len(found) - 1, min(cases, len(found))).astype(int)]
    agree = all_agree = all_total = 0
    for n, s in enumerate(found):
        i = s + context
        teacher = frame_shift(test.frames[i - 1], test.frames[i])
        ctx, ctx_a = latents[s:i], acts[s:i]
        last = decode(engine, ctx[-1:])[0]
        for m in moves:
            pred = decode(
                engine, free_run(engine, ctx, ctx_a, one_hot(torch.tensor([m]), space.dim), seed=n)
            )[0]
            shift = frame_shift(last, pred)
            if m == test.actions[i]:
                agree += shift == teacher
            all_agree += shift == MOVE_SHIFT[names[m]]
            all_total += 1
    return {
        "cases": len(found),
        "true_move": agree / max(len(found), 1),
        "all_moves": all_agree / max(all_total, 1),
    }


def eval_speed(engine: Engine, prompt: np.ndarray, sessions: int, frames: int = 200) -> dict:
    """fps and frame-time percentiles of engine.step with `sessions` live sessions."""
    ids = [f"speed-{i}" for i in range(sessions)]
    for i, sid in enumerate(ids):
        engine.add_session(sid, prompt_frames=prompt, seed=i)
    move = engine.action_space.zeros()
    times = []
    try:
        for n in range(frames + 10):
            t0 = time.perf_counter()
            engine.step({sid: move for sid in ids})
            if n >= 10:  # the first frames still fill the window
                times.append(time.perf_counter() - t0)
    finally:
        for sid in ids:
            engine.remove_session(sid)
    ms = np.array(times) * 1000
    return {
        "sessions": sessions,
        "fps": float(1000 / ms.mean()),
        "p50_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
    }


def _sampling(parser: argparse.ArgumentParser, args: argparse.Namespace, config):
    # The checkpoint's sampling with --stabilization / --ddim-steps applied.
    if args.stabilization is not None:
        config = config.with_sampling(stabilization_level=args.stabilization)
    if args.ddim_steps is not None:
        if args.ddim_steps < 1:
            parser.error("--ddim-steps must be at least 1")
        config = config.with_sampling(ddim_steps=args.ddim_steps)
    return config


def _run_long(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> int:
    # --long hands over to the whole-session evaluation with its own flags.
    long_parser = argparse.ArgumentParser(prog=f"{parser.prog} --long")
    long_session.add_arguments(long_parser)
    for key, value in vars(long_parser.parse_args(rest)).items():
        if not hasattr(args, key):  # --data and --threads mean the same in both
            setattr(args, key, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("inference.engine").setLevel(logging.WARNING)
    return long_session.run(args)


def main(argv: list[str] | None = None) -> None:
    """CLI: print every metric (and write them as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="models/crafter-small.safetensors")
    parser.add_argument("--data", default="var/training/data")
    parser.add_argument("--holdout", type=int, default=2)
    parser.add_argument("--dtype", default=None, help="default: bf16 where the CPU has it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stabilization", type=int, default=None)
    parser.add_argument(
        "--ddim-steps",
        type=int,
        default=None,
        help="override the checkpoint's denoising steps per frame",
    )
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--skip", default="", help="comma list of ae,prediction,actions,speed")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--long",
        action="store_true",
        help="the whole-session evaluation instead (long_session.py; its flags "
        "--minutes, --quick, --out, --sampling, --seed, --make-reference)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.long:
        raise SystemExit(_run_long(parser, args, rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    world = load_checkpoint(args.checkpoint)
    config = _sampling(parser, args, world.config)
    dtype = choose_dtype("cpu", args.dtype)
    engine = Engine(
        config, world.dit, world.autoencoder, world.action_space, EngineOptions(dtype=dtype)
    )
    test = load_recording(args.data, "test", args.holdout)
    skip = set(args.skip.split(","))
    with torch.no_grad():
        latents = engine.encode_frames(test.frames) if skip != {"ae", "speed"} else None
    results: dict = {
        "checkpoint": args.checkpoint,
        "dtype": dtype,
        "stabilization_level": config.sampling.stabilization_level,
        "ddim_steps": config.sampling.ddim_steps,
        "training_step": world.training_step,
    }
    print(
        f"checkpoint {args.checkpoint} ({Path(args.checkpoint).stat().st_size / 1e6:.1f} MB, "
        f"DiT step {world.training_step}), {dtype}, stabilization level "
        f"{config.sampling.stabilization_level}, {config.sampling.ddim_steps} DDIM steps"
    )
    if "ae" not in skip:
        results["ae_psnr"] = eval_autoencoder(engine, test)
        print(f"autoencoder PSNR (held-out)  {results['ae_psnr']:.2f} dB   (target >= 26)")
    if "prediction" not in skip:
        pred = eval_prediction(engine, test, latents)
        results["prediction"] = pred
        for h, p in pred.items():
            verdict = "beats" if p["model"] > p["repeat"] else "below"
            line = (
                f"prediction h={h:<2}  model {p['model']:.2f} dB  repeat-last "
                f"{p['repeat']:.2f} dB ({verdict})"
            )
            if p["moving_cases"]:
                line += (
                    f" | {p['moving_cases']} windows with a move: model "
                    f"{p['model_moving']:.2f} dB, repeat-last {p['repeat_moving']:.2f} dB"
                )
            print(line)
    if "actions" not in skip:
        act = eval_actions(engine, test, latents, args.cases)
        results["actions"] = act
        print(
            f"action response over {act['cases']} teacher moves: {100 * act['true_move']:.1f}%"
            f" agree (target >= 90); all four moves vs expected scroll "
            f"{100 * act['all_moves']:.1f}%"
        )
    if "speed" not in skip:
        prompt = test.frames[:1]
        results["speed"] = [eval_speed(engine, prompt, n) for n in (1, 2)]
        for s in results["speed"]:
            print(
                f"engine {s['sessions']} session(s): {s['fps']:.1f} steps/s, p50 "
                f"{s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
