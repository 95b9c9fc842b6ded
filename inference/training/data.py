"""Recorded gameplay in memory: frames for the autoencoder, latent clips for the DiT.

The last `holdout` shards never reach training; evaluation and the sample rollouts use them.
Clips are T consecutive frames of one segment (segments never straddle a reset).

Dimension letters: N frames, T clip length, C/H/W latent channels and size, A action dim.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)


@dataclass
class Recording:
    """Concatenated shards: frames (N,H,W,3) uint8, actions (N,) int, segment ids (N,)."""

    frames: np.ndarray
    actions: np.ndarray
    segments: np.ndarray
    action_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.actions)

    def clip_starts(self, length: int) -> np.ndarray:
        """Indices i such that frames i..i+length-1 lie in one segment."""
        n = len(self) - length + 1
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        same = self.segments[:n] == self.segments[length - 1 :]
        return np.nonzero(same)[0]


def load_recording(
    folder: str | Path, split: str = "train", holdout: int = 2, limit: int | None = None
) -> Recording:
    """Shards of a recorder folder: "train" (all but the last `holdout`), "test", or "all"."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    shards = sorted(manifest["shards"], key=lambda s: s["index"])
    if split == "train":
        shards = shards[:-holdout] if holdout else shards
    elif split == "test":
        shards = shards[-holdout:]
    elif split != "all":
        raise ValueError(f"split must be train, test or all, not {split!r}")
    if limit is not None:
        shards = shards[:limit]
    if not shards:
        raise ValueError(f"no {split} shards in {folder}")
    frames, actions, segments = [], [], []
    offset = 0
    for entry in shards:
        with np.load(folder / entry["file"]) as data:
            frames.append(data["frames"])
            actions.append(data["actions"].astype(np.int64))
            # Segment ids restart in every shard; offset them so shards never join.
            segments.append(data["segment"].astype(np.int64) + offset)
            offset = int(segments[-1].max()) + 1
    logger.info("loaded %d %s shard(s) from %s", len(shards), split, folder)
    return Recording(
        np.concatenate(frames),
        np.concatenate(actions),
        np.concatenate(segments),
        tuple(manifest["action_names"]),
    )


def to_images(frames: np.ndarray) -> Tensor:
    """uint8 (N,H,W,3) -> float (N,3,H,W) in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255


def one_hot(actions: Tensor | np.ndarray, dim: int) -> Tensor:
    """Integer actions (...,) -> float one-hot (..., dim)."""
    return torch.nn.functional.one_hot(torch.as_tensor(actions).long(), dim).float()


class ClipSampler:
    """Random clips of latents and one-hot actions for Diffusion Forcing."""

    def __init__(
        self, latents: Tensor, recording: Recording, length: int, action_dim: int, seed: int = 0
    ):
        self.latents = latents  # (N, C, H, W), already scaled to unit variance
        self.actions = one_hot(recording.actions, action_dim)  # (N, A)
        # The first frame of a segment was not produced by its recorded action: call it no-op.
        first = np.r_[True, recording.segments[1:] != recording.segments[:-1]]
        self.actions[torch.from_numpy(first)] = one_hot(torch.tensor(0), action_dim)
        self.starts = torch.from_numpy(recording.clip_starts(length))
        self.length = length
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self, batch: int) -> tuple[Tensor, Tensor]:
        """(latents (B,T,C,H,W), actions (B,T,A))."""
        pick = self.starts[torch.randint(len(self.starts), (batch,), generator=self.gen)]
        index = pick[:, None] + torch.arange(self.length)  # (B, T)
        return self.latents[index].float(), self.actions[index]
