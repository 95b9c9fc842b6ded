"""Label a gameplay video with the actions that made it, using an inverse-dynamics model.

    python -m inference.training.label --idm models/idm-crafter.safetensors --video IN \
        --out OUT.npz [--recording DIR] [--fps 20]

IN is a video file (mp4, webm, mkv: anything PyAV decodes) or a folder of numbered PNG frames
(--fps gives its frame rate). Frames are brought to the model's frame size and the play rate
(video_frames.py) and labelled in batches as they stream in. OUT (.npz) holds
  actions     (N,) the index of the action that produced each output frame; frame 0 gets the
              no-op (nothing before it shows what made it)
  names       (A,) the action space's names
  confidence  (N,) the IDM's probability of its label (1 for frame 0, which is not predicted)
  fps, source the play rate and the input's path
--recording DIR also writes the frames with their labels in the recorder's format (shards and
manifest.json, record.py), appended to what DIR holds, so `train --data DIR` takes the video
like any recording. Frames whose confidence is below --unsure are counted and the first few
listed; the confidence array lets training weigh or drop them.
Nothing half-written is left behind: OUT and the shards are written under temporary names and
renamed on success. A bad input is a one-line error and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import CheckpointError
from ..idm import LoadedIDM, load_idm
from .data import to_images
from .label_recording import RecordingError, RecordingWriter
from .progress import Progress
from .video_frames import VideoError, fit, open_frames, resampled

logger = logging.getLogger(__name__)


class LabelError(ValueError):
    """The labelling cannot go on; the message is one line."""


def windows_of(frames: Iterator[np.ndarray], before: int, after: int, batch: int):
    """Batches of windows, uint8 (B,K,H,W,3): frame t with its neighbours, clamped at the ends.

    Frame t is ready once frame t + after has arrived (or the stream ended); only the frames
    that ready and pending windows still need are kept, so memory stays bounded.
    """
    history: list[np.ndarray] = []
    offset = 0  # stream index of history[0]
    pending: list[int] = []
    next_t, done = 0, False
    while not done:
        try:
            history.append(next(frames))
        except StopIteration:
            done = True
        last = offset + len(history) - 1
        while next_t <= last and (next_t + after <= last or done):
            pending.append(next_t)
            next_t += 1
        while pending and (len(pending) >= batch or done):
            chunk, pending = pending[:batch], pending[batch:]
            index = np.clip(np.array(chunk)[:, None] + np.arange(-before, after + 1), 0, last)
            yield np.stack([[history[i - offset] for i in row] for row in index])  # (B,K,...)
        keep_from = (pending[0] if pending else next_t) - before
        drop = max(0, keep_from - offset)
        del history[:drop]
        offset += drop


def label_frames(idm: LoadedIDM, frames: Iterator[np.ndarray], batch: int, on_frame):
    """(actions (N,), confidence (N,)) for a stream of model-size frames; on_frame(frame)."""
    cfg = idm.config
    actions, confidence = [], []

    def tee() -> Iterator[np.ndarray]:
        for frame in frames:
            on_frame(frame)
            yield frame

    with torch.inference_mode():
        for window in windows_of(tee(), cfg.before, cfg.after, batch):
            x = to_images(window.reshape(-1, *window.shape[2:]))  # (B*K,3,H,W)
            probs = idm.model(x.reshape(window.shape[0], cfg.window, *x.shape[1:])).softmax(-1)
            conf, act = probs.max(-1)
            actions.append(act.numpy())
            confidence.append(conf.numpy())
    if not actions:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    out_actions = np.concatenate(actions)
    out_conf = np.concatenate(confidence).astype(np.float32)
    out_actions[0], out_conf[0] = 0, 1.0  # frame 0: nothing shows what made it
    return out_actions, out_conf


def save_labels(out: Path, actions, confidence, names, fps: float, source: str) -> None:
    """OUT.npz under a temporary name, renamed when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                actions=actions.astype(np.uint8 if len(names) <= 256 else np.int32),
                names=np.array(names),
                confidence=confidence,
                fps=np.float32(fps),
                source=np.array(source),
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> str:
    """Label args.video into args.out (and args.recording); the summary to print."""
    try:
        idm = load_idm(args.idm)
    except CheckpointError as exc:
        raise LabelError(f"--idm: {exc}") from None
    torch.set_num_threads(args.threads)
    cfg, names = idm.config, idm.action_space.names
    info, source = open_frames(args.video, args.fps)
    writer = None
    if args.recording is not None:
        writer = RecordingWriter(args.recording, names, cfg.frame_size, str(args.video), args.idm)
    estimate = max(1, round(info.expected_seconds * cfg.fps))
    with Progress(estimate, "label") as bar:

        def on_frame(frame: np.ndarray) -> None:
            if writer is not None:
                writer.add(frame)
            bar.update(1)

        model_frames = resampled(
            ((t, fit(f, cfg.frame_size)) for t, f in source), cfg.fps, info.rate
        )
        try:
            actions, confidence = label_frames(idm, model_frames, args.batch, on_frame)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is not None:
        writer.finish(actions, confidence)
    save_labels(args.out, actions, confidence, names, cfg.fps, str(args.video))
    return summary(info, actions, confidence, names, cfg, args)


def summary(info, actions, confidence, names, cfg, args) -> str:
    counts = np.bincount(actions, minlength=len(names))
    common = ", ".join(f"{names[i]} {counts[i]}" for i in np.argsort(-counts)[:5] if counts[i])
    unsure = np.nonzero(confidence < args.unsure)[0]
    listed = ", ".join(str(i) for i in unsure[:8]) + (" ..." if len(unsure) > 8 else "")
    lines = [
        info.describe(len(actions), cfg.fps, cfg.frame_size),
        f"labels: {common}",
        f"{len(unsure)} frames ({len(unsure) / max(len(actions), 1):.1%}) below confidence "
        f"{args.unsure:g}" + (f": {listed}" if len(unsure) else ""),
        f"wrote {args.out}" + (f" and {args.recording}" if args.recording else ""),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI: label one video."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idm", type=Path, default=Path("models/idm-crafter.safetensors"))
    parser.add_argument("--video", type=Path, required=True, help="a video file or PNG folder")
    parser.add_argument("--out", type=Path, required=True, help="the labels (.npz)")
    parser.add_argument("--recording", type=Path, help="also append the frames to this folder")
    parser.add_argument("--fps", type=float, default=20.0, help="a PNG folder's frame rate")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--unsure", type=float, default=0.9, help="report labels below this")
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if not 0 < args.unsure <= 1:
        parser.error("--unsure must lie in (0, 1]")
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a folder; give a file name such as labels.npz")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        print(run(args))
    except (LabelError, VideoError, RecordingError) as exc:
        print(f"label: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("label: interrupted; nothing written", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
