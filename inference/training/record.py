"""Record teacher gameplay at the play cadence into sharded, compressed numpy files.

Layout of an output folder:
    manifest.json          teacher, cadence, frame size, action names, and one entry per shard
    shard_00000.npz        frames (n,H,W,3) uint8, actions (n,) uint8, held (n,) uint8,
                           segment (n,) int32
Frame i is the picture after teacher action actions[i] (the gated one the model is trained
with); held[i] is the key the policy held. A segment is a run of frames with continuous time:
a new one starts at every reset (death, episode end), so training clips never straddle a cut.
By default the light is fixed at full daylight (`--daylight 1`): a model that sees nights
learns darkness as a state it cannot leave, and walking sessions ended in an endless night.
With `--daylight cycle` Crafter's own day runs and most nights are skipped by moving the day
clock from dusk to the equally bright morning. Shards
are independent (own seed), so recording resumes by skipping the shards the manifest lists, and
several processes can record at once.

    python -m inference.training.record --out var/training/data --frames 120000
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..cadence import NOOP, PERIOD, KeyRepeat
from .policy import HumanlikePolicy
from .progress import Progress
from .teachers import make_teacher

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Crafter's daylight is symmetric about step 210 of its 300-step day, equal (0.8) at 120 and 300:
# jumping from one to the other skips the night without a visible change of brightness.
NIGHT_START, NIGHT_END = 120, 300


@dataclass(frozen=True)
class RecordConfig:
    """What a recording was made with; saved in its manifest."""

    teacher: str = "crafter"
    shard_frames: int = 2000
    period: int = PERIOD
    seed: int = 0
    night_keep: float = 0.1  # share of nights played through (daylight None); the rest skipped
    daylight: float | None = 1.0  # fixed light level; None: Crafter's own day-night cycle


def shard_name(index: int) -> str:
    """File name of shard `index`."""
    return f"shard_{index:05d}.npz"


def record_shard(cfg: RecordConfig, index: int) -> dict:
    """Play one shard's worth of frames with its own seed; returns arrays and stats."""
    rng = np.random.default_rng([cfg.seed, index])
    teacher = make_teacher(cfg.teacher, daylight=cfg.daylight)
    gate = KeyRepeat(cfg.period)
    policy = HumanlikePolicy(
        teacher.action_names, int(rng.integers(2**31)), teacher.probe, cfg.period
    )
    H, W = teacher.frame_size
    frames = np.empty((cfg.shard_frames, H, W, 3), np.uint8)
    actions = np.zeros(cfg.shard_frames, np.uint8)
    held = np.zeros(cfg.shard_frames, np.uint8)
    segment = np.zeros(cfg.shard_frames, np.int32)
    seg, fresh, skip_night = -1, True, True
    for i in range(cfg.shard_frames):
        if fresh:
            seg, fresh = seg + 1, False
            frames[i] = teacher.reset(int(rng.integers(2**31)))
            gate.reset()
            segment[i] = seg
            continue
        key = policy()
        action = gate(key)
        frame, done = teacher.step(action)
        frames[i], actions[i], held[i], segment[i] = frame, action, key, seg
        fresh = done
        hints = teacher.probe()
        clock = hints.get("time")
        if clock == NIGHT_START - 1:
            skip_night = rng.random() >= cfg.night_keep
        skip_to = getattr(teacher, "set_time", None) if cfg.daylight is None else None
        if skip_to and skip_night and clock is not None and NIGHT_START <= clock < NIGHT_END:
            skip_to(hints["step"] + NIGHT_END - clock)
    return {"frames": frames, "actions": actions, "held": held, "segment": segment}


def write_shard(out: Path, index: int, data: dict) -> dict:
    """Write shard `index` of `out` atomically; its manifest entry."""
    path = out / shard_name(index)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, path)  # a killed recorder never leaves a half-written shard behind
    acts = data["actions"]
    return {
        "file": path.name,
        "index": index,
        "frames": int(len(acts)),
        "segments": int(data["segment"].max()) + 1,
        "moves": int(np.isin(acts, (1, 2, 3, 4)).sum()),
        "noops": int((acts == NOOP).sum()),
    }


def _job(args: tuple[RecordConfig, str, int]) -> dict:
    cfg, out, index = args
    return write_shard(Path(out), index, record_shard(cfg, index))


def load_manifest(out: Path) -> dict:
    """The folder's manifest, or an empty one."""
    path = out / MANIFEST
    if path.exists():
        return json.loads(path.read_text())
    return {"shards": []}


def save_manifest(out: Path, manifest: dict) -> None:
    """Replace the manifest atomically."""
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)


def record(
    out: str | Path, frames: int, cfg: RecordConfig = RecordConfig(), workers: int = 1
) -> dict:
    """Record until the folder holds at least `frames` frames; resumes where it stopped."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    if manifest.get("config") and "daylight" not in manifest["config"]:
        manifest["config"]["daylight"] = None  # recorded before the option: Crafter's cycle
    if manifest.get("config") and manifest["config"] != asdict(cfg):
        raise ValueError(f"{out} was recorded with {manifest['config']}, not {asdict(cfg)}")
    teacher = make_teacher(cfg.teacher, daylight=cfg.daylight)
    manifest.update(
        config=asdict(cfg),
        action_names=list(teacher.action_names),
        frame_size=list(teacher.frame_size),
    )
    done = {s["index"] for s in manifest["shards"] if (out / s["file"]).exists()}
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] in done]
    wanted = -(-frames // cfg.shard_frames)
    todo = [i for i in range(wanted) if i not in done]
    logger.info("recording %d shard(s) into %s (%d already there)", len(todo), out, len(done))
    with Progress(wanted * cfg.shard_frames, "record", start=len(done) * cfg.shard_frames) as bar:
        jobs = [(cfg, str(out), i) for i in todo]
        if workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_job, jobs)
        else:
            pool, results = None, map(_job, jobs)
        try:
            for entry in results:
                manifest["shards"].append(entry)
                manifest["shards"].sort(key=lambda s: s["index"])
                save_manifest(out, manifest)
                bar.update(entry["frames"])
        finally:
            if pool is not None:
                pool.terminate()
    save_manifest(out, manifest)
    return manifest


def _daylight(text: str) -> float | None:
    if text == "cycle":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'cycle'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"daylight must lie in [0, 1], got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    """CLI: record gameplay for training."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="var/training/data")
    parser.add_argument("--frames", type=int, default=120_000)
    parser.add_argument("--teacher", default="crafter")
    parser.add_argument("--shard-frames", type=int, default=2000)
    parser.add_argument("--period", type=int, default=PERIOD)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--daylight",
        type=_daylight,
        default=1.0,
        metavar="LEVEL|cycle",
        help="fixed light level in [0, 1] (default 1: always day), or 'cycle' "
        "for the teacher's own day and night",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = RecordConfig(
        args.teacher, args.shard_frames, args.period, args.seed, daylight=args.daylight
    )
    manifest = record(args.out, args.frames, cfg, args.workers)
    total = sum(s["frames"] for s in manifest["shards"])
    print(f"{args.out}: {len(manifest['shards'])} shards, {total} frames")


if __name__ == "__main__":
    main()
