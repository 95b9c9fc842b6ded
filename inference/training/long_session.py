"""Whole-session evaluation: does the generated world hold for five minutes of play?

    python -m inference.training.long_session --checkpoint models/crafter-small.safetensors
    python -m inference.training.evaluate --long ...           (the same)

Sessions run through the worker's own runtime (EngineRuntime: the serving engine and the key
cadence), all batched in one engine, from every shipped world (models/worlds), each under a
scripted regime (players.py: idle, walk, mine, build, mixed) with its own seed. The standard run
plays every world walking, plus one of mixed / idle / mine / build in turn (10 sessions, about
15 minutes on two cores); each regime meets at least one world, walking meets all. Every 10 s
of play it measures, over the frames of that window (every 5th frame) and the world area of
the picture (the top 7 tile rows):

- detail: mean |Laplacian| of the luminance, the sharpness a flat field loses first;
- brightness and colour: mean luminance, and the total-variation distance of the 64-bin colour
  histogram to the reference's;
- tiles: share of flat 7x7 tiles (pixel std < 3 grey levels);
- change: mean |difference| to the previous frame (a model that stops reading its history keeps
  its detail but flickers; this shows it);
- KID x 1000 to the reference in the feature space of a small network trained on teacher frames
  to tell what the view holds (features.py);
- collapsed sessions: window detail below DETAIL_FLOOR (see below).

The reference is the teacher itself (Crafter, always day as recorded): the same worlds played by
the same scripted players with the same seeds for the same time (held-out frames: the model never
trained on these sessions), plus held-out shards of the training recording for KID. It is made
once with --make-reference (a few minutes) and shipped in models/eval/, so the evaluation needs
only the model. The target: no collapsed session, and at 1 and 5 minutes the model's detail and
KID within 25 % of the teacher's own figures at the same time (the teacher's KID is its sessions'
distance to the recording: open-loop players see other things than the recorder's).

DETAIL_FLOOR = 10: no 10-s window of teacher play in the reference goes below 27 (open grass is
the flattest real view); the collapsed fields the issue reported (flat grey or dark green, the
endless night of the first models, the stone fields of the current one) sit at 5-10.

Outputs in --out: table.txt and summary.json (the printed table), curves_detail.png,
curves_kid.png, curves_collapsed.png, strip.png (one
frame every 30 s of every session) and <world>.gif (one session per world, a frame a second).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..cadence import KeyRepeat
from ..engine_runtime import EngineRuntime
from .players import REGIMES, ScriptedPlayer

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
WORLDS = REPO / "models" / "worlds"
REFERENCE = REPO / "models" / "eval" / "crafter-long-reference.npz"
FEATURES = REPO / "models" / "eval" / "crafter-features.safetensors"
FPS = 20
WINDOW_SECONDS = 10
SAMPLE_EVERY = 5  # frames between measured frames (40 per 10-s window)
WORLD_ROWS = 49  # 7 tile rows of 7 px; the bottom rows are the inventory
TILE = 7
FLAT_STD = 3.0
DETAIL_FLOOR = 10.0
TARGET_TOLERANCE = 0.25
GIF_EVERY = FPS  # one frame a second
STRIP_EVERY = 30 * FPS


@dataclass(frozen=True)
class Plan:
    """One session: a world, a regime and a seed (for the player and the model's noise)."""

    world: str
    regime: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.world}/{self.regime}/{self.seed}"


def load_worlds(folder: Path = WORLDS) -> list[dict]:
    """The shipped worlds' index entries, each with its prompt frames under 'frames'."""
    index = json.loads((folder / "index.json").read_text())
    for entry in index:
        entry["frames"] = np.stack(
            [np.asarray(Image.open(folder / p).convert("RGB")) for p in entry["prompt_frames"]]
        )
    return index


def standard_plans(worlds: list[str], quick: bool = False, seed: int = 0) -> list[Plan]:
    """Walking on every world, plus mixed / idle / mine / build in turn (quick: walk only)."""
    others = ("mixed", "idle", "mine", "build")
    plans = []
    for i, world in enumerate(worlds):
        regimes = ["walk"] if quick else ["walk", others[i % len(others)]]
        plans += [Plan(world, r, seed + 100 * i + REGIMES.index(r)) for r in regimes]
    return plans


# -- frame statistics -----------------------------------------------------------------------


def _luma(frames: np.ndarray) -> np.ndarray:
    world = frames[:, :WORLD_ROWS].astype(np.float32)  # (N, 49, W, 3)
    return world @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, 49, W)


def frame_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame (N,): detail, brightness, flat-tile share; colour histogram (N, 64)."""
    g = _luma(frames)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    n, h, w = g.shape
    cols = w // TILE
    tiles = g[:, : (h // TILE) * TILE, : cols * TILE].reshape(n, h // TILE, TILE, cols, TILE)
    flat = (tiles.std(axis=(2, 4)) < FLAT_STD).mean(axis=(1, 2))
    q = (frames[:, :WORLD_ROWS] // 64).astype(np.int64)  # 4 levels per channel
    bins = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n, -1)
    hist = np.stack([np.bincount(b, minlength=64) for b in bins]).astype(np.float32)
    return {
        "detail": np.abs(lap).mean(axis=(1, 2)),
        "brightness": g.mean(axis=(1, 2)),
        "flat": flat.astype(np.float32),
        "hist": hist / hist.sum(1, keepdims=True),
    }


@dataclass
class SessionLog:
    """What one session showed: measured frames, GIF and strip frames."""

    plan: Plan
    measured: list[np.ndarray] = field(default_factory=list)  # every SAMPLE_EVERY-th frame
    change: list[float] = field(default_factory=list)  # mean |frame - previous frame| there
    gif: list[np.ndarray] = field(default_factory=list)
    strip: list[np.ndarray] = field(default_factory=list)
    previous: np.ndarray | None = None

    def record(self, index: int, frame: np.ndarray) -> None:
        if index % SAMPLE_EVERY == SAMPLE_EVERY - 1:
            self.measured.append(frame)
            before = frame if self.previous is None else self.previous
            # How much the picture moves per frame: a model that stops reading its context
            # keeps its detail but flickers, and this, unlike detail, shows it.
            self.change.append(
                float(np.abs(frame[:WORLD_ROWS].astype(np.int16) - before[:WORLD_ROWS]).mean())
            )
        self.previous = frame
        if index % GIF_EVERY == 0:
            self.gif.append(frame)
        if index % STRIP_EVERY == STRIP_EVERY - 1 or index == 0:
            self.strip.append(frame)

    def windows(self) -> np.ndarray:
        """Measured frames grouped by 10-s window, (windows, per window, H, W, 3)."""
        per = WINDOW_SECONDS * FPS // SAMPLE_EVERY
        frames = np.stack(self.measured)
        return frames[: len(frames) // per * per].reshape(-1, per, *frames.shape[1:])


# -- playing ------------------------------------------------------------------------------


def play_model(
    runtime: EngineRuntime, worlds: dict[str, dict], plans: list[Plan], frames: int
) -> list[SessionLog]:
    """Every plan as one live session of the runtime, all stepped together.

    Held keys pass each session's key-repeat gate at the runtime's cadence, as a worker's
    ActionEncoder passes them, so the model sees the actions a browser player would give it.
    """
    names = tuple(runtime.action_names)
    space = runtime.action_space
    logs, players, gates = [], {}, {}
    for plan in plans:
        sid = plan.name
        runtime.start(sid, worlds[plan.world]["frames"], seed=plan.seed)
        players[sid] = ScriptedPlayer(plan.regime, names, plan.seed)
        gates[sid] = KeyRepeat(runtime.key_repeat)
        logs.append(SessionLog(plan))
    started = time.monotonic()
    try:
        for i in range(frames):
            actions = {sid: space.one_hot(gates[sid](p())).numpy() for sid, p in players.items()}
            out = runtime.step(actions)
            for log in logs:
                log.record(i, out[log.plan.name])
            if i % (FPS * 30) == FPS * 30 - 1:
                rate = (i + 1) * len(plans) / (time.monotonic() - started)
                logger.info(
                    "%d s of play, %.0f frames/s over %d sessions", (i + 1) // FPS, rate, len(plans)
                )
    finally:
        for sid in players:
            runtime.stop(sid)
    return logs


def _teacher_job(args: tuple[dict, Plan, int]) -> SessionLog:
    from .teachers import CrafterTeacher

    world, plan, frames = args
    teacher = CrafterTeacher(daylight=1.0)

    def respawn() -> None:
        teacher.reset(int(world["seed"]))
        env = teacher._env
        env._world.move(env._player, np.array(world["tile"]))

    respawn()
    player = ScriptedPlayer(plan.regime, teacher.action_names, plan.seed)
    gate = KeyRepeat()
    log = SessionLog(plan)
    for i in range(frames):
        frame, done = teacher.step(gate(player()))
        log.record(i, frame)
        if done:  # a blind player can walk into lava: start again at the spot, as people do
            logger.info("teacher session %s: respawn at frame %d", plan.name, i)
            respawn()
            gate.reset()
    log.gif = log.strip = []  # only the statistics are kept
    return log


def play_teacher(
    worlds: dict[str, dict], plans: list[Plan], frames: int, workers: int = 2
) -> list[SessionLog]:
    """The teacher playing the same plans from the same spots, one process per session."""
    jobs = [
        ({"seed": worlds[p.world]["seed"], "tile": worlds[p.world]["tile"]}, p, frames)
        for p in plans
    ]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_teacher_job, jobs)


# -- summaries --------------------------------------------------------------------------------


def window_stats(logs: list[SessionLog], embed=None) -> dict:
    """Per session and window: mean detail/brightness/flat, pooled histogram; features."""
    out: dict = {"plans": [log.plan.name for log in logs]}
    per_session = []
    for log in logs:
        win = log.windows()  # (K, P, H, W, 3)
        stats = [frame_stats(w) for w in win]
        row = {k: np.stack([s[k].mean(0) for s in stats]) for k in stats[0]}  # (K,) or (K,64)
        per = win.shape[1]
        row["change"] = np.asarray(log.change[: len(win) * per]).reshape(len(win), per).mean(1)
        if embed is not None:
            row["features"] = np.stack([embed(w) for w in win])  # (K, P, D)
        per_session.append(row)
    for key in per_session[0]:
        out[key] = np.stack([row[key] for row in per_session])  # (S, K, ...)
    return out


def summarise(model: dict, reference: dict) -> list[dict]:
    """One row per 10-s mark: pooled figures of the model and of the teacher."""
    from .features import kid

    # Features are centred on the recording and scaled by one number, its RMS spread, so the
    # cubic kernel sees unit scales whatever the activations are (one scale for all dimensions:
    # per-dimension scaling would blow up nearly constant features on unseen pictures).
    mean = reference["recording_features"].mean(0)
    std = float(np.sqrt(((reference["recording_features"] - mean) ** 2).mean())) + 1e-6
    recording = (reference["recording_features"] - mean) / std
    ref_hist = reference["recording_hist"]
    rows = []
    marks = min(model["detail"].shape[1], reference["teacher_detail"].shape[1])
    for k in range(marks):
        row = {"seconds": (k + 1) * WINDOW_SECONDS}
        for who, src in (("model", model), ("teacher", _teacher_view(reference))):
            hist = src["hist"][:, k].mean(0)
            row[who] = {
                "detail": float(src["detail"][:, k].mean()),
                "brightness": float(src["brightness"][:, k].mean()),
                "flat": float(src["flat"][:, k].mean()),
                "change": float(src["change"][:, k].mean()),
                "colour_tv": float(np.abs(hist - ref_hist).sum() / 2),
                "kid": kid(
                    (src["features"][:, k].reshape(-1, recording.shape[1]) - mean) / std,
                    recording,
                    seed=k,
                ),
            }
        row["collapsed"] = int((model["detail"][:, k] < DETAIL_FLOOR).sum())
        row["sessions"] = int(model["detail"].shape[0])
        row["regimes"] = _by_regime(model, k)
        rows.append(row)
    return rows


def _teacher_view(reference: dict) -> dict:
    return {
        key: reference[f"teacher_{key}"]
        for key in ("detail", "brightness", "flat", "change", "hist", "features")
    }


def _by_regime(model: dict, k: int) -> dict[str, float]:
    regimes: dict[str, list[float]] = {}
    for name, detail in zip(model["plans"], model["detail"][:, k], strict=True):
        regimes.setdefault(name.split("/")[1], []).append(float(detail))
    return {r: float(np.mean(v)) for r, v in regimes.items()}


def verdict(rows: list[dict]) -> dict:
    """The issue's targets: no collapse; detail and KID within 25 % of the teacher at 1, 5 min."""
    out = {
        "collapsed_sessions_any_time": max(r["collapsed"] for r in rows),
        "collapse_free": all(r["collapsed"] == 0 for r in rows),
    }
    for minute in (1, 5):
        row = next((r for r in rows if r["seconds"] == 60 * minute), None)
        if row is None:
            continue
        m, t = row["model"], row["teacher"]
        out[f"detail_ratio_{minute}min"] = m["detail"] / t["detail"]
        out[f"kid_ratio_{minute}min"] = m["kid"] / max(t["kid"], 1e-9)
        out[f"detail_ok_{minute}min"] = abs(m["detail"] / t["detail"] - 1) <= TARGET_TOLERANCE
        out[f"kid_ok_{minute}min"] = m["kid"] <= (1 + TARGET_TOLERANCE) * t["kid"]
    return out


def format_table(rows: list[dict], every: int = 30) -> str:
    """The printed table: every `every` seconds, model vs teacher."""
    head = (
        f"{'time':>5} | {'detail':>13} | {'bright':>11} | {'flat tiles':>11} | "
        f"{'change':>11} | {'colour TV':>11} | {'KID x1000':>15} | collapsed | "
        "detail by regime"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["seconds"] % every and r["seconds"] != rows[-1]["seconds"]:
            continue
        m, t = r["model"], r["teacher"]
        regimes = " ".join(f"{k} {v:.0f}" for k, v in sorted(r["regimes"].items()))
        lines.append(
            f"{r['seconds']:>4}s | {m['detail']:5.1f} / {t['detail']:5.1f} | "
            f"{m['brightness']:4.0f} / {t['brightness']:4.0f} | "
            f"{m['flat']:.2f} / {t['flat']:.2f} | {m['change']:4.1f} / {t['change']:4.1f} | "
            f"{m['colour_tv']:.2f} / {t['colour_tv']:.2f} | {m['kid']:6.0f} / {t['kid']:6.0f} | "
            f"{r['collapsed']:>3} of {r['sessions']:<3} | {regimes}"
        )
    lines.append(
        "(model / teacher; detail = mean |Laplacian| of the world area; "
        f"collapsed = 10-s detail below {DETAIL_FLOOR:g})"
    )
    return "\n".join(lines)


# -- pictures ---------------------------------------------------------------------------------


def write_pictures(out: Path, logs: list[SessionLog], rows: list[dict]) -> None:
    """curves.png, strip.png and one GIF per world."""
    from .plots import plot_curves

    def series(pick) -> list[tuple[int, float]]:
        return [(r["seconds"], float(pick(r))) for r in rows]

    detail = {
        f"{regime} (model)": series(lambda r, g=regime: r["regimes"][g])
        for regime in sorted(rows[0]["regimes"])
    }
    detail["all sessions (model)"] = series(lambda r: r["model"]["detail"])
    detail["teacher"] = series(lambda r: r["teacher"]["detail"])
    detail["collapse floor"] = series(lambda r: DETAIL_FLOOR)
    charts = {
        "curves_detail.png": ("detail (mean |Laplacian| of the world area)", detail),
        "curves_kid.png": (
            "KID x1000 to held-out teacher frames",
            {
                "model": series(lambda r: r["model"]["kid"]),
                "teacher": series(lambda r: r["teacher"]["kid"]),
            },
        ),
        "curves_collapsed.png": (
            f"sessions collapsed (of {rows[0]['sessions']})",
            {"collapsed": series(lambda r: r["collapsed"])},
        ),
    }
    for name, (title, curves) in charts.items():
        plot_curves(out / name, curves, title, log_y=False, x_unit="s of play")
    strip = [np.concatenate(log.strip, 1) for log in logs if log.strip]
    if strip:
        width = max(s.shape[1] for s in strip)
        strip = [np.pad(s, ((0, 2), (0, width - s.shape[1]), (0, 0))) for s in strip]
        Image.fromarray(np.concatenate(strip, 0)).save(out / "strip.png")
    shown = set()
    for log in logs:
        if log.plan.world in shown or not log.gif:
            continue
        if log.plan.regime not in ("mixed", "walk"):
            continue
        shown.add(log.plan.world)
        pictures = [Image.fromarray(f).resize((128, 128), Image.NEAREST) for f in log.gif]
        pictures[0].save(
            out / f"{log.plan.world}.gif",
            save_all=True,
            append_images=pictures[1:],
            duration=100,
            loop=0,
        )


# -- reference ----------------------------------------------------------------------------------


def make_reference(
    path: Path, data: Path, features_path: Path, frames: int, workers: int = 2
) -> dict:
    """Teacher sessions of the standard plans and held-out recording frames, as statistics."""
    from . import features as feat
    from .data import load_recording

    net = feat.load(features_path)
    index = load_worlds()
    worlds = {w["slug"]: w for w in index}
    plans = standard_plans(list(worlds))
    logger.info("playing %d teacher sessions of %d frames", len(plans), frames)
    logs = play_teacher(worlds, plans, frames, workers)
    stats = window_stats(logs, lambda f: feat.embed(net, f))
    test = load_recording(data, "test")
    pick = np.linspace(0, len(test) - 1, min(4000, len(test))).astype(int)
    rec = test.frames[pick]
    reference = {f"teacher_{k}": v for k, v in stats.items() if k != "plans"}
    rec_stats = frame_stats(rec)
    reference.update(
        teacher_plans=np.array(stats["plans"]),
        recording_features=feat.embed(net, rec).astype(np.float16),
        recording_hist=rec_stats["hist"].mean(0),
        recording_detail=rec_stats["detail"],
    )
    reference["teacher_features"] = reference["teacher_features"].astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **reference)
    low = float(reference["teacher_detail"].min())
    logger.info("wrote %s; lowest 10-s teacher detail %.1f (floor %.1f)", path, low, DETAIL_FLOOR)
    return reference


def load_reference(path: Path, plans: list[Plan]) -> dict:
    """The shipped reference, restricted to the given plans (which it must hold)."""
    with np.load(path) as data:
        ref = {k: data[k] for k in data.files}
    held = [str(p) for p in ref["teacher_plans"]]
    missing = [p.name for p in plans if p.name not in held]
    if missing:
        raise ValueError(
            f"{path} has no teacher sessions for {missing}; remake it with --make-reference"
        )
    rows = [held.index(p.name) for p in plans]
    for key in [k for k in ref if k.startswith("teacher_") and k != "teacher_plans"]:
        ref[key] = ref[key][rows].astype(np.float32)
    ref["recording_features"] = ref["recording_features"].astype(np.float32)
    return ref


# -- command --------------------------------------------------------------------------------


def evaluate_long(
    checkpoint: str,
    out: Path,
    minutes: float = 5.0,
    quick: bool = False,
    sampling: dict | None = None,
    dtype: str | None = None,
    threads: int | None = None,
    seed: int = 0,
    reference: Path = REFERENCE,
    features: Path = FEATURES,
) -> dict:
    """Play, measure, compare with the teacher, write pictures; the summary dict."""
    from . import features as feat

    index = load_worlds()
    worlds = {w["slug"]: w for w in index}
    plans = standard_plans(list(worlds), quick, seed)
    ref = load_reference(reference, plans)
    net = feat.load(features)
    frames = int(minutes * 60 * FPS)
    runtime = EngineRuntime(checkpoint, dtype=dtype, threads=threads, sampling=sampling)
    started = time.monotonic()
    logs = play_model(runtime, worlds, plans, frames)
    played = time.monotonic() - started
    stats = window_stats(logs, lambda f: feat.embed(net, f))
    rows = summarise(stats, ref)
    result = {
        "checkpoint": str(checkpoint),
        "sampling": runtime.engine.config.sampling.__dict__,
        "dtype": runtime.dtype,
        "sessions": [p.name for p in plans],
        "minutes": minutes,
        "seconds_played": played,
        "rows": rows,
        "verdict": verdict(rows),
    }
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(rows, every=10 if quick else 30)
    (out / "table.txt").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=float))
    write_pictures(out, logs, rows)
    return result | {"table": table}


def parse_sampling(pairs: list[str]) -> dict:
    """--sampling stabilization_level=101 context_schedule=300,100,15 -> typed overrides."""
    from dataclasses import fields

    from ..config import SamplingConfig

    types = {f.name: f.type for f in fields(SamplingConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types or not value:
            raise ValueError(f"--sampling takes NAME=VALUE with NAME one of {sorted(types)}")
        kind = str(types[key])
        if kind.startswith("tuple"):
            try:
                out[key] = tuple(int(v) for v in value.split(","))
            except ValueError:
                raise ValueError(f"{key} takes comma-separated integers, not {value!r}") from None
        elif "bool" in kind:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{key} takes true or false, not {value!r}")
            out[key] = value.lower() in ("true", "1")
        elif "int" in kind:
            out[key] = int(value)
        elif "float" in kind:
            out[key] = float(value)
        else:
            out[key] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The long evaluation's flags (shared with evaluate --long)."""
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="walking sessions only (one per world), for CI-sized checks",
    )
    parser.add_argument("--out", type=Path, default=Path("var/long_session"))
    parser.add_argument(
        "--sampling",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="override the checkpoint's sampling config",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--make-reference",
        action="store_true",
        help="play the teacher and write the reference file instead",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("var/training/data"),
        help="recording whose held-out shards the reference uses",
    )
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--features", type=Path, default=FEATURES)


def run(args: argparse.Namespace) -> int:
    """Run the long evaluation (or make its reference) from parsed flags."""
    if args.make_reference:
        make_reference(args.reference, args.data, args.features, int(args.minutes * 60 * FPS))
        return 0
    try:
        sampling = parse_sampling(args.sampling)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    result = evaluate_long(
        args.checkpoint,
        args.out,
        args.minutes,
        args.quick,
        sampling,
        args.dtype,
        args.threads,
        args.seed,
        args.reference,
        args.features,
    )
    print(
        f"{args.checkpoint}: {len(result['sessions'])} sessions of {args.minutes:g} min, "
        f"played in {result['seconds_played']:.0f} s ({result['dtype']})"
    )
    print(result["table"])
    print(json.dumps(result["verdict"], default=float))
    print(f"pictures and summary in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> None:
    """CLI."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="models/crafter-small.safetensors")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("inference.engine").setLevel(logging.WARNING)
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
