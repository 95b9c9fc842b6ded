"""A small feature network for distances between sets of frames (KID), trained on the teacher.

FID and KID compare two sets of pictures in the feature space of a network that knows what
pictures hold (Inception, for photographs). For 64x64 Crafter frames we train our own: a small
CNN that predicts, from a teacher frame, the share of each material and creature in the 9x7-tile
view (read from the teacher's semantic map). Its pooled penultimate activations describe a frame
by content: a world of trees, water and stone lies far from a flat field or a dark screen even
when their average colours agree.

    python -m inference.training.features --out models/eval/crafter-features.safetensors

Dimension letters: N frames, K outputs (materials and creatures), D feature width.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..cadence import KeyRepeat
from .policy import HumanlikePolicy
from .progress import Progress
from .teachers import CrafterTeacher
from .worlds import VIEW_H, VIEW_W

logger = logging.getLogger(__name__)


class FeatureNet(nn.Module):
    """64x64 RGB -> D features (and K view-share logits for training)."""

    def __init__(self, outputs: int, width: int = 32, dim: int = 64):
        super().__init__()
        self.outputs, self.width, self.dim = outputs, width, dim
        chans = (3, width, 2 * width, 4 * width, dim)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1),
                nn.GroupNorm(8, cout),
                nn.GELU(),
            ]
        self.body = nn.Sequential(*layers)  # 64 -> 4 pixels
        self.head = nn.Linear(dim, outputs)

    def features(self, images: Tensor) -> Tensor:
        """(N,3,64,64) in [0,1] -> (N,D)."""
        return self.body(images * 2 - 1).mean((-2, -1))

    def forward(self, images: Tensor) -> Tensor:
        """(N,3,64,64) -> (N,K) logits of the view's material and creature shares."""
        return self.head(self.features(images))


def _images(frames: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255


@torch.no_grad()
def embed(net: FeatureNet, frames: np.ndarray, batch: int = 512) -> np.ndarray:
    """uint8 frames (N,64,64,3) -> float32 features (N,D)."""
    net.eval()
    out = [net.features(_images(frames[i : i + batch])) for i in range(0, len(frames), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.dim), np.float32)


def view_shares(teacher: CrafterTeacher, names: list[str]) -> np.ndarray:
    """(K,) share of each semantic id in the 9x7 view around the player."""
    env = teacher._env  # private, but stable across crafter 1.8.x
    sem = env._sem_view()  # (area_w, area_h) ids: materials, then creatures
    x, y = env._player.pos
    window = sem[
        max(0, x - VIEW_W // 2) : x + VIEW_W // 2 + 1, max(0, y - VIEW_H // 2) : y + VIEW_H // 2 + 1
    ]
    counts = np.bincount(window.ravel(), minlength=len(names))[: len(names)]
    return (counts / max(1, counts.sum())).astype(np.float32)


def semantic_names(teacher: CrafterTeacher) -> list[str]:
    """Names of the semantic ids, in id order."""
    view = teacher._env._sem_view
    ids = {
        **{str(k): v for k, v in view._mat_ids.items()},
        **{c.__name__.lower(): v for c, v in view._obj_ids.items()},
    }
    names = [""] * (max(ids.values()) + 1)
    for name, i in ids.items():
        names[i] = name
    return names


def _collect_job(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    seed, frames, stride = args
    rng = np.random.default_rng(seed)
    teacher = CrafterTeacher(daylight=1.0)
    teacher.reset(int(rng.integers(2**31)))
    names = semantic_names(teacher)
    policy = HumanlikePolicy(teacher.action_names, int(rng.integers(2**31)), teacher.probe)
    gate = KeyRepeat()
    shots, shares = [], []
    for i in range(frames * stride):
        frame, done = teacher.step(gate(policy()))
        if done:
            teacher.reset(int(rng.integers(2**31)))
        if i % stride == 0:
            shots.append(frame)
            shares.append(view_shares(teacher, names))
    return np.stack(shots), np.stack(shares), names


def collect(frames: int, seed: int = 0, workers: int = 2, stride: int = 4):
    """Teacher frames (N,64,64,3) and their view shares (N,K), every `stride`-th frame."""
    jobs = [(seed * 1000 + i, frames // workers, stride) for i in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_collect_job, jobs)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        parts[0][2],
    )


def train(
    frames: np.ndarray, shares: np.ndarray, steps: int = 3000, batch: int = 64, seed: int = 0
) -> tuple[FeatureNet, float]:
    """Fit the share predictor; returns it and its held-out mean absolute share error."""
    torch.manual_seed(seed)
    split = int(len(frames) * 0.9)
    net = FeatureNet(shares.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    target = torch.from_numpy(shares)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with Progress(steps, "features") as bar:
        for step in range(steps):
            pick = torch.randint(split, (batch,), generator=gen)
            images = _images(frames[pick.numpy()])
            if step % 2:
                images = images.flip(-1)  # a mirrored view holds the same things
            loss = F.cross_entropy(net(images), target[pick])  # soft labels
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1, loss=loss.item())
    net.eval()
    with torch.no_grad():
        predicted = torch.cat(
            [net(_images(frames[i : i + 512])).softmax(-1) for i in range(split, len(frames), 512)]
        )
    error = float((predicted - target[split:]).abs().sum(-1).mean() / 2)
    return net, error


def save(net: FeatureNet, path: Path, names: list[str], error: float) -> None:
    """Weights plus what rebuilds the net, in one safetensors file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "outputs": str(net.outputs),
        "width": str(net.width),
        "dim": str(net.dim),
        "names": json.dumps(names),
        "heldout_share_error": f"{error:.4f}",
    }
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), meta)


def load(path: str | Path) -> FeatureNet:
    """The net saved by save()."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    net = FeatureNet(int(meta["outputs"]), int(meta["width"]), int(meta["dim"]))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 50, size: int = 200, seed: int = 0) -> float:
    """Kernel Inception Distance of two feature sets (N,D), (M,D), times 1000.

    Unbiased MMD^2 with the cubic polynomial kernel (x.y / D + 1)^3 of Binkowski et al. 2018,
    averaged over random subsets, so sets of different sizes compare fairly; 0 means the same
    distribution (it can dip slightly below 0 by chance).
    """
    rng = np.random.default_rng(seed)
    n = min(size, len(a), len(b))
    if n < 2:
        raise ValueError(f"KID needs at least 2 frames per set, got {len(a)} and {len(b)}")
    dim = a.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), n, replace=False)].astype(np.float64)
        y = b[rng.choice(len(b), n, replace=False)].astype(np.float64)
        kxx, kyy, kxy = ((p @ q.T / dim + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = 1 - np.eye(n)
        total += ((kxx * off).sum() + (kyy * off).sum()) / (n * (n - 1)) - 2 * kxy.mean()
    return 1000 * total / subsets


def main(argv: list[str] | None = None) -> None:
    """CLI: collect teacher frames, train the feature net, save it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("models/eval/crafter-features.safetensors")
    )
    parser.add_argument("--frames", type=int, default=24_000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stride", type=int, default=2, help="keep every n-th teacher frame")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    frames, shares, names = collect(args.frames, args.seed, args.workers, args.stride)
    logger.info("collected %d teacher frames, %d semantic classes", len(frames), len(names))
    net, error = train(frames, shares, args.steps)
    save(net, args.out, names, error)
    print(
        f"{args.out}: {sum(p.numel() for p in net.parameters())} parameters, held-out view "
        f"share error {error:.3f} (total variation; 0 is perfect)"
    )


if __name__ == "__main__":
    main()
