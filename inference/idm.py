"""Inverse dynamics: which action made frame t, read off the frames around it.

The labelling model of Video PreTraining (Baker et al., 2022) and of Decart's Oasis data: a
small network sees a short window of consecutive frames (t-1, t, t+1) and names the action that
produced frame t, so recordings without action logs become training data. Frame t is the
picture *after* action t (the recorder's convention, inference/training/record.py), so the
evidence sits mostly in the change from t-1 to t; t+1 helps where an effect shows a frame late.

File format: one safetensors file, the network's tensors plus metadata holding the IDMConfig
and the action space as JSON (format "reverie-idm"), so loading never guesses.

Dimension letters: B batch, K window frames, C channels, H/W frame height and width, A actions.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from .actions import ActionSpace
from .checkpoints import CheckpointError, load_strict, load_tensors

logger = logging.getLogger(__name__)

FORMAT = "reverie-idm"


@dataclass(frozen=True)
class IDMConfig:
    """Shape of an inverse-dynamics model; saved inside its file."""

    frame_size: tuple[int, int] = (64, 64)
    before: int = 1  # frames before t in the window
    after: int = 1  # frames after t
    widths: tuple[int, ...] = (32, 64, 128, 128)  # conv stages, each halving H and W
    hidden: int = 256
    fps: float = 20.0  # the play rate the frames were recorded at

    @property
    def window(self) -> int:
        return self.before + 1 + self.after

    @property
    def in_channels(self) -> int:
        # Every frame, plus the change between each neighbouring pair: motion is what names a
        # move, and a difference channel hands it to the first layer directly.
        return 3 * self.window + 3 * (self.window - 1)


class InverseDynamics(nn.Module):
    """(B,K,3,H,W) frames in [0,1] -> (B,A) action logits for the window's centre frame."""

    def __init__(self, config: IDMConfig, actions: int):
        super().__init__()
        self.config, self.actions = config, actions
        layers: list[nn.Module] = []
        channels = config.in_channels
        for width in config.widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        side = (config.frame_size[0] >> len(config.widths)) * (
            config.frame_size[1] >> len(config.widths)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(channels * side, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, actions),
        )

    def forward(self, frames: Tensor) -> Tensor:
        B, K, _, H, W = frames.shape
        diffs = frames[:, 1:] - frames[:, :-1]  # (B,K-1,3,H,W)
        x = torch.cat([frames, diffs], dim=1).reshape(B, -1, H, W)  # (B,3K+3(K-1),H,W)
        return self.head(self.features(x * 2 - 1))  # (B,A)


@dataclass
class LoadedIDM:
    """An inverse-dynamics model read from its file."""

    model: InverseDynamics
    config: IDMConfig
    action_space: ActionSpace
    meta: dict


def save_idm(
    path: str | os.PathLike, model: InverseDynamics, space: ActionSpace, meta: dict | None = None
) -> Path:
    """Write model, config, action space and `meta` (training figures) to one file, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(asdict(model.config)),
        "action_space": json.dumps(space.to_dict()),
        "meta": json.dumps(meta or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)
    return path


def load_idm(path: str | os.PathLike) -> LoadedIDM:
    """Read a file written by save_idm; CheckpointError (a ValueError) names what is wrong."""
    tensors, metadata = load_tensors(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(path, f"not an inverse-dynamics model (format {FORMAT!r} missing)")
    try:
        raw = json.loads(metadata["config"])
        raw["frame_size"] = tuple(raw["frame_size"])
        raw["widths"] = tuple(raw["widths"])
        config = IDMConfig(**raw)
        space = ActionSpace.from_dict(json.loads(metadata["action_space"]))
        meta = json.loads(metadata.get("meta", "{}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, f"malformed metadata: {exc}") from None
    if space.kind != "one_hot":
        raise CheckpointError(path, f"an IDM names one action per frame, not {space.kind}")
    model = InverseDynamics(config, space.dim)
    load_strict(model, tensors, path)
    return LoadedIDM(model.eval(), config, space, meta)
