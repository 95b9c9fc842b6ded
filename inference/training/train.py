"""Train a world model from a recording: autoencoder, latents, DiT, export. Resumable.

    python -m inference.training.train --data var/training/data --run var/training/run \
        --export models/crafter-small.safetensors

Phases (each skips itself when its state file says it is done, so rerunning resumes):
  1. autoencoder   run/ae.pt          (+ ae_loss.png, ae_samples.png)
  2. latents       run/latents.pt     every frame encoded once, scaled to unit variance
  3. DiT           run/dit.pt         Diffusion Forcing; exports every `export_minutes`
                                      (+ dit_loss.png, dit_rollouts.png)
  4. export        one safetensors file: EMA weights, config and action space inside
--init-from CHECKPOINT starts a new run from an exported model (its config and weights; the AE
counts as done) so training continues on a machine that holds only the committed file.
Optional phase "decoder" (--phases decoder,export) fine-tunes only the decoder of a finished AE:
sharper frames, same latents, so an already trained DiT stays valid.
The run's pid sits in run/../train.pid while it works (removed on exit).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
from dataclasses import fields
from pathlib import Path

import torch

from ..actions import get_action_space
from ..checkpoints import CheckpointError
from ..config import get_preset
from .data import load_recording
from .seed_run import SeedError, seed_run
from .train_ae import (
    AETrainConfig,
    encode_all,
    finetune_decoder,
    load_trained_autoencoder,
    train_autoencoder,
)
from .train_dit import DiTTrainConfig, export_world, train_dit

logger = logging.getLogger(__name__)


def _latents(run: Path, world, train, test) -> dict:
    # Phase 2: encode every frame once; the DiT phase then never touches pixels.
    path = run / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    ae, scale = load_trained_autoencoder(run, world)
    logger.info("encoding %d + %d frames", len(train), len(test))
    out = {
        "train": encode_all(ae, train.frames, scale),
        "test": encode_all(ae, test.frames, scale),
        "scaling_factor": scale,
    }
    torch.save(out, path)
    return out


def _pidfile(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    atexit.register(lambda: path.unlink(missing_ok=True))
    # SIGTERM would skip atexit; exiting through SystemExit removes the pid file. (SIGSTOP and
    # SIGCONT from a benchmarking colleague need nothing: every state file is written atomically.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _overrides(cls, args: argparse.Namespace, prefix: str):
    given = {
        f.name: getattr(args, prefix + f.name)
        for f in fields(cls)
        if getattr(args, prefix + f.name, None) is not None
    }
    return cls(**given)


def _levels(text: str) -> tuple[int, ...]:
    if text == "none":
        return ()
    try:
        levels = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of levels") from None
    if not all(0 <= v < 1000 for v in levels):
        raise argparse.ArgumentTypeError(f"levels must lie in [0, 1000), got {text}")
    return levels


def _sampling_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace, world):
    # What the exported model samples with: denoising steps, context level, dynamic noising.
    if args.ddim_steps is not None:
        world = world.with_sampling(ddim_steps=args.ddim_steps)
    if args.stabilization_level is not None:
        world = world.with_sampling(stabilization_level=args.stabilization_level)
    if args.context_schedule is not None:
        world = world.with_sampling(context_schedule=args.context_schedule)
    schedule = world.sampling.context_schedule
    if schedule and len(schedule) != world.sampling.ddim_steps:
        parser.error(
            f"--context-schedule has {len(schedule)} levels for "
            f"{world.sampling.ddim_steps} denoising steps"
        )
    return world


def _world(parser: argparse.ArgumentParser, args: argparse.Namespace, run: Path):
    # The run's world and actions: seeded from --init-from, or the preset's.
    if args.init_from is not None:
        try:
            world, space = seed_run(run, args.init_from, args.reset_actions)
        except (CheckpointError, SeedError) as exc:
            parser.error(f"--init-from: {exc}")
    else:
        if args.reset_actions:
            parser.error("--reset-actions needs --init-from")
        world = get_preset(args.preset)
        space = get_action_space(world.action_space)
    return _sampling_overrides(parser, args, world), space


def main(argv: list[str] | None = None) -> None:
    """CLI: run (or resume) every phase."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="var/training/data")
    parser.add_argument("--run", default="var/training/run")
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="continue from an exported model (its config replaces --preset)",
    )
    parser.add_argument(
        "--reset-actions",
        action="store_true",
        help="with --init-from: start the DiT's action embedding at zero, to be learnt "
        "from this run's labels",
    )
    parser.add_argument("--export", default="models/crafter-small.safetensors")
    parser.add_argument("--phases", default="ae,latents,dit,export")
    parser.add_argument(
        "--ddim-steps",
        type=int,
        default=None,
        help="denoising steps per frame the exported model samples with "
        "(default: the preset's, or the --init-from model's)",
    )
    parser.add_argument(
        "--stabilization-level",
        type=int,
        default=None,
        help="the exported model labels clean context with this level - 1 "
        "(default: the preset's, or the --init-from model's)",
    )
    parser.add_argument(
        "--context-schedule",
        type=_levels,
        default=None,
        metavar="L1,L2,...",
        help="dynamic noising of the exported model: the context noise level "
        "of each denoising pass (one per DDIM step; 'none' for clean "
        "context as in generate.py)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--holdout", type=int, default=2, help="shards kept for evaluation")
    parser.add_argument("--limit-shards", type=int, default=None)
    parser.add_argument(
        "--decoder-steps",
        type=int,
        default=2000,
        help="steps of the optional 'decoder' phase (frozen encoder)",
    )
    for prefix, cls in (("ae_", AETrainConfig), ("dit_", DiTTrainConfig)):
        for f in fields(cls):
            kind = {"int": int, "float": float, "bool": int}.get(str(f.type), float)
            parser.add_argument(
                f"--{prefix}{f.name}".replace("_", "-"),
                dest=prefix + f.name,
                type=kind,
                default=None,
            )
    args = parser.parse_args(argv)
    if args.ddim_steps is not None and args.ddim_steps < 1:
        parser.error("--ddim-steps must be at least 1")
    if args.stabilization_level is not None and not 1 <= args.stabilization_level <= 1000:
        parser.error("--stabilization-level must lie in [1, 1000]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("inference.engine").setLevel(logging.WARNING)  # sample sessions: noise
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    _pidfile(run.parent / "train.pid")
    world, space = _world(parser, args, run)
    phases = args.phases.split(",")
    if set(phases) - {"export"}:  # exporting alone needs only the run folder
        train = load_recording(args.data, "train", args.holdout, args.limit_shards)
        test = load_recording(args.data, "test", args.holdout)
    if "ae" in phases:
        train_autoencoder(run, world, train, test, _overrides(AETrainConfig, args, "ae_"))
    if "decoder" in phases:  # optional: sharpen frames later without invalidating the DiT
        finetune_decoder(
            run, world, train, test, args.decoder_steps, _overrides(AETrainConfig, args, "ae_")
        )
    if "latents" in phases or "dit" in phases:
        latents = _latents(run, world, train, test)
    if "dit" in phases:
        train_dit(
            run,
            world,
            space,
            train,
            test,
            latents,
            _overrides(DiTTrainConfig, args, "dit_"),
            export=Path(args.export) if "export" in phases else None,
        )
    if "export" in phases:
        export_world(run, world, space, Path(args.export))  # it logs the file and its size


if __name__ == "__main__":
    main()
