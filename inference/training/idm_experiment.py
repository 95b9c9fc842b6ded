"""Train from video: the same world model trained on IDM labels and on the true labels.

    python -m inference.training.idm_experiment --source var/idm/video-source \
        --idm models/idm-crafter.safetensors --work var/idm/experiment --steps 600

Phases (each skips itself when its output is there, so rerunning resumes):
  1. videos    every shard of the --source recording written as an mp4 (H.264, 20 fps, 4x
               upscaled): gameplay video whose actions are hidden from everything after
  2. label     each mp4 through the labelling command (label.py) into recording from-video/
  3. twin      true-labels/: the same decoded frames with the recording's true actions, and
               the labels' accuracy against them (the IDM on compressed video)
  4. train     for each arm, train.py --init-from the shipped model with --reset-actions: the
               DiT's action embedding starts at zero and is learnt from that arm's labels for
               --steps steps, everything else (weights, frames, steps, seed) the same
  5. evaluate  both exports on the held-out shards with the true actions (PSNR, action
               response) and, unless --skip-long, the long-session --quick run; a table
Starting from the shipped model isolates the labels: the dynamics are already learnt, and what
each arm must learn is which action index means which change, from its own labels.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from . import evaluate, label, train
from .record import load_manifest, save_manifest

logger = logging.getLogger(__name__)

ARMS = ("true", "idm")
PHASES = ("videos", "label", "twin", "train", "evaluate")


def write_video(frames: np.ndarray, path: Path, fps: int = 20, scale: int = 4) -> None:
    """(N,H,W,3) uint8 as an H.264 mp4, each pixel a scale x scale block; atomic."""
    tmp = path.with_name(path.stem + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2] * scale, frames.shape[1] * scale
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            big = frame.repeat(scale, 0).repeat(scale, 1)  # (H*s,W*s,3)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)


def make_videos(source: Path, videos: Path) -> list[Path]:
    videos.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in sorted(load_manifest(source)["shards"], key=lambda s: s["index"]):
        path = videos / Path(entry["file"]).with_suffix(".mp4").name
        if not path.exists():
            with np.load(source / entry["file"]) as data:
                write_video(data["frames"], path)
            logger.info("wrote %s", path)
        paths.append(path)
    return paths


def label_videos(videos: list[Path], idm: Path, work: Path) -> None:
    done = work / "label.done"
    if done.exists():
        return
    shutil.rmtree(work / "from-video", ignore_errors=True)  # a half-labelled run starts over
    for path in videos:
        label.main(
            [
                "--idm",
                str(idm),
                "--video",
                str(path),
                "--recording",
                str(work / "from-video"),
                "--out",
                str(work / "labels" / f"{path.stem}.npz"),
            ]
        )
    done.write_text("ok")


def make_twin(source: Path, work: Path) -> dict:
    """true-labels/ (decoded frames, true actions) and the IDM's accuracy on the videos."""
    out = work / "true-labels"
    report = work / "label_accuracy.json"
    if report.exists():
        return json.loads(report.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    truth = {Path(s["file"]).stem: s for s in load_manifest(source)["shards"]}
    manifest = load_manifest(work / "from-video")
    right = changed_right = changed = total = 0
    for entry in manifest["shards"]:
        with np.load(work / "from-video" / entry["file"]) as data:
            arrays = dict(data)
        with np.load(source / truth[Path(entry["source"]).stem]["file"]) as original:
            true_actions = original["actions"]
        if len(true_actions) != len(arrays["actions"]):
            raise SystemExit(
                f"{entry['source']}: {len(arrays['actions'])} frames decoded, "
                f"{len(true_actions)} recorded"
            )
        moved = np.r_[
            False,
            (np.diff(arrays["frames"].astype(np.int16), axis=0) != 0)
            .reshape(len(true_actions) - 1, -1)
            .any(1),
        ]
        hit = arrays["actions"] == true_actions
        right, total = right + int(hit[1:].sum()), total + len(hit) - 1
        changed_right, changed = changed_right + int(hit[moved].sum()), changed + int(moved.sum())
        arrays["actions"] = arrays["held"] = true_actions
        np.savez_compressed(out / entry["file"], **arrays)
    save_manifest(out, {**manifest, "config": {"teacher": "video", "labels": "true"}})
    result = {
        "accuracy": right / max(total, 1),
        "changed_accuracy": changed_right / max(changed, 1),
        "frames": total,
    }
    report.write_text(json.dumps(result, indent=1))
    return result


def train_arms(work: Path, init: Path, steps: int, stamp: str) -> None:
    from ..checkpoints import load_checkpoint

    start = load_checkpoint(init).training_step or 0
    for arm in ARMS:
        data = work / ("true-labels" if arm == "true" else "from-video")
        export = work / f"{arm}.safetensors"
        if export.exists() and (work / f"{arm}.trained").exists():
            continue
        train.main(
            [
                "--data",
                str(data),
                "--run",
                str(work / f"run-{arm}"),
                "--init-from",
                str(init),
                "--reset-actions",
                "--export",
                str(export),
                "--phases",
                "dit,export",
                "--dit-steps",
                str(start + steps),
                "--dit-warmup",
                "50",
                "--dit-ema",
                "0.99",
                "--dit-export-minutes",
                "1000",
            ]
        )
        (work / f"{arm}.trained").write_text(stamp)


def evaluate_arms(work: Path, cases: int, long: bool) -> dict:
    results = {}
    for arm in ARMS:
        path = work / f"eval-{arm}.json"
        if not path.exists():
            evaluate.main(
                [
                    "--checkpoint",
                    str(work / f"{arm}.safetensors"),
                    "--data",
                    str(work / "true-labels"),
                    "--cases",
                    str(cases),
                    "--skip",
                    "speed",
                    "--json",
                    str(path),
                ]
            )
        results[arm] = json.loads(path.read_text())
        long_path = work / f"long-{arm}" / "summary.json"
        if long and not long_path.exists():
            try:
                evaluate.main(
                    [
                        "--long",
                        "--quick",
                        "--checkpoint",
                        str(work / f"{arm}.safetensors"),
                        "--out",
                        str(work / f"long-{arm}"),
                    ]
                )
            except SystemExit as exc:
                if exc.code:
                    raise
        if long_path.exists():
            results[arm]["long"] = json.loads(long_path.read_text())
    return results


def main(argv: list[str] | None = None) -> None:
    """CLI: run (or resume) the experiment."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="a recorder folder")
    parser.add_argument("--idm", type=Path, default=Path("models/idm-crafter.safetensors"))
    parser.add_argument("--init-from", type=Path, default=Path("models/crafter-small.safetensors"))
    parser.add_argument("--work", type=Path, default=Path("var/idm/experiment"))
    parser.add_argument(
        "--steps", type=int, default=3000, help="DiT steps per arm (600 is too few to learn)"
    )
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    if set(phases) - set(PHASES):
        parser.error(f"--phases: choose from {','.join(PHASES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    if "videos" in phases or "label" in phases:
        videos = make_videos(args.source, args.work / "videos")
    if "label" in phases:
        label_videos(videos, args.idm, args.work)
    if "twin" in phases:
        print(
            "IDM labels of the videos against the hidden truth:", make_twin(args.source, args.work)
        )
    if "train" in phases:
        train_arms(args.work, args.init_from, args.steps, f"{args.steps} steps")
    if "evaluate" in phases:
        results = evaluate_arms(args.work, args.cases, not args.skip_long)
        (args.work / "results.json").write_text(json.dumps(results, indent=1, default=float))
        print(
            json.dumps(
                {arm: {k: v for k, v in r.items() if k != "long"} for arm, r in results.items()},
                indent=1,
                default=float,
            )
        )


if __name__ == "__main__":
    main()
