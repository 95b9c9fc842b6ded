"""Train the inverse-dynamics model on a small labelled recording and evaluate it on held-out play.

    python -m inference.training.train_idm --data var/idm/labelled --train-frames 6000 \
        --out models/idm-crafter.safetensors --report var/idm/report

Phases:
  1. windows   every frame t of the recording with its neighbours (t-1, t, t+1), clamped at a
               segment's ends (the labeller sees the same at a video's ends); a segment's first
               frame is left out, as its recorded action did not make it
  2. train     the first --train-frames frames of the train shards (6,000 = five minutes of
               play at 20 fps: "the team plays for a while"), AdamW, cross-entropy
  3. evaluate  the last --holdout shards: accuracy overall, per action, on frames that changed,
               and by confidence; a confusion table printed and drawn as confusion.png
  4. save      the model with its config, action space and these figures inside
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..actions import ACTION_SPACES, ActionSpace, Button
from ..idm import IDMConfig, InverseDynamics, save_idm
from .data import Recording, load_recording, to_images
from .idm_report import IDMReport, draw_confusion, evaluate_predictions
from .progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IDMTrainConfig:
    """Training hyper-parameters (every one is a flag)."""

    steps: int = 3000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def window_indices(segments: np.ndarray, before: int, after: int) -> np.ndarray:
    """(N,K) frame indices of each frame's window, clamped to its own segment's ends."""
    n = len(segments)
    offsets = np.arange(-before, after + 1)
    index = np.clip(np.arange(n)[:, None] + offsets, 0, n - 1)  # (N,K)
    # A neighbour in another segment is replaced by the nearest frame of this one.
    same = segments[index] == segments[:, None]
    centre = before
    for k in range(centre - 1, -1, -1):
        index[:, k] = np.where(same[:, k], index[:, k], index[:, k + 1])
    for k in range(centre + 1, len(offsets)):
        index[:, k] = np.where(same[:, k], index[:, k], index[:, k - 1])
    return index


def segment_starts(segments: np.ndarray) -> np.ndarray:
    """(N,) True where a frame opens its segment (its recorded action did not make it)."""
    return np.r_[True, segments[1:] != segments[:-1]]


class WindowSet:
    """A recording's windows as float images on demand: (B,K,3,H,W) and labels (B,)."""

    def __init__(self, recording: Recording, config: IDMConfig):
        self.images = to_images(recording.frames)  # (N,3,H,W), 48 KB a frame as float
        self.index = torch.from_numpy(
            window_indices(recording.segments, config.before, config.after)
        )
        keep = ~segment_starts(recording.segments)
        self.rows = torch.from_numpy(np.nonzero(keep)[0])
        self.labels = torch.from_numpy(recording.actions)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        frames = self.rows[rows]
        return self.images[self.index[frames]], self.labels[frames]  # (B,K,3,H,W), (B,)

    def changed(self) -> np.ndarray:
        """(len,) True where frame t differs from frame t-1 at all."""
        t = self.rows
        return (self.images[t] != self.images[t - 1]).flatten(1).any(1).numpy()


def class_weights(labels: Tensor, actions: int) -> Tensor:
    """Inverse square-root frequency, mean 1 over the data: rare actions count more, not fully."""
    counts = torch.bincount(labels, minlength=actions).float().clamp(min=1)
    weights = counts.rsqrt()
    return weights / (weights[labels].mean())


def train_idm(
    model: InverseDynamics, data: WindowSet, cfg: IDMTrainConfig, threads: int
) -> list[float]:
    """Train in place; the loss of every step."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = class_weights(data.labels[data.rows], model.actions)
    warmup = max(1, cfg.steps // 20)
    losses = []
    model.train()
    with Progress(cfg.steps, "idm") as bar:
        for step in range(cfg.steps):
            lr = cfg.lr * min(1.0, (step + 1) / warmup)
            lr *= 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            for group in opt.param_groups:
                group["lr"] = lr
            frames, labels = data.batch(torch.randint(len(data), (cfg.batch,), generator=gen))
            loss = F.cross_entropy(model(frames), labels, weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.update(1, loss=losses[-1])
    model.eval()
    return losses


@torch.inference_mode()
def predict(model: InverseDynamics, data: WindowSet, batch: int = 256) -> Tensor:
    """(len, A) softmax probabilities of every window."""
    out = [
        model(data.batch(torch.arange(i, min(i + batch, len(data))))[0]).softmax(-1)
        for i in range(0, len(data), batch)
    ]
    return torch.cat(out)


def action_space_for(names: tuple[str, ...], wanted: str) -> ActionSpace:
    """The named built-in space; "auto": the built-in one with these names, else a plain one."""
    if wanted != "auto":
        space = ACTION_SPACES.get(wanted)
        if space is None or space.names != names:
            raise ValueError(f"the recording's actions {names} are not those of {wanted!r}")
        return space
    for space in ACTION_SPACES.values():
        if space.kind == "one_hot" and space.names == names:
            return space
    # A teacher of its own: labelling needs only the names, not key bindings.
    return ActionSpace("recorded-" + str(len(names)), "one_hot", tuple(Button(n) for n in names))


def _split(recording: Recording, frames: int) -> Recording:
    frames = min(frames, len(recording))
    return Recording(
        recording.frames[:frames],
        recording.actions[:frames],
        recording.segments[:frames],
        recording.action_names,
    )


def main(argv: list[str] | None = None) -> None:
    """CLI: train, evaluate and save an inverse-dynamics model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a recorder folder (record.py)")
    parser.add_argument("--train-frames", type=int, default=6000)
    parser.add_argument("--holdout", type=int, default=2, help="shards kept for evaluation")
    parser.add_argument(
        "--action-space", default="auto", help="a built-in space, or auto: from the recording"
    )
    parser.add_argument("--out", default="models/idm-crafter.safetensors")
    parser.add_argument("--report", type=Path, default=Path("var/idm/report"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--confident", type=float, default=0.9, help="confidence threshold")
    parser.add_argument("--widths", default="32,64,128,128", help="conv stage widths")
    parser.add_argument("--hidden", type=int, default=256)
    for name, default in vars(IDMTrainConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.train_frames < 100:
        parser.error("--train-frames must be at least 100")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    try:
        train = _split(load_recording(args.data, "train", args.holdout), args.train_frames)
        test = load_recording(args.data, "test", args.holdout)
        space = action_space_for(tuple(train.action_names), args.action_space)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"--data: {exc}")
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
        config = IDMConfig(tuple(train.frames.shape[1:3]), widths=widths, hidden=args.hidden)
    except ValueError:
        parser.error(f"--widths: {args.widths!r} is not a comma list of numbers")
    if min(config.frame_size) >> len(widths) < 1 or any(w % 8 for w in widths):
        parser.error("--widths: each a multiple of 8, and no more stages than halve the frame")
    model = InverseDynamics(config, space.dim)
    cfg = IDMTrainConfig(args.steps, args.batch, args.lr, args.weight_decay, args.seed)
    train_set, test_set = WindowSet(train, config), WindowSet(test, config)
    started = time.monotonic()
    losses = train_idm(model, train_set, cfg, args.threads)
    minutes = (time.monotonic() - started) / 60
    probs = predict(model, test_set)
    report: IDMReport = evaluate_predictions(
        probs.numpy(),
        test_set.labels[test_set.rows].numpy(),
        test_set.changed(),
        space.names,
        args.confident,
    )
    args.report.mkdir(parents=True, exist_ok=True)
    draw_confusion(args.report / "confusion.png", report)
    meta = {
        "train_frames": len(train_set),
        "test_frames": len(test_set),
        "train_minutes": round(minutes, 1),
        "steps": cfg.steps,
        "final_loss": float(np.mean(losses[-100:])),
        **report.summary(),
    }
    (args.report / "report.json").write_text(json.dumps(meta, indent=1))
    save_idm(args.out, model, space, meta)
    print(report.table())
    print(
        f"trained on {len(train_set)} frames ({len(train_set) / config.fps / 60:.1f} min of play) "
        f"in {minutes:.1f} min; tested on {len(test_set)} held-out frames; "
        f"saved {args.out}, {args.report / 'confusion.png'}"
    )


if __name__ == "__main__":
    main()
