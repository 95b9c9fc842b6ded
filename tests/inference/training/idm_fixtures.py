"""A small recording of the fake teacher and an IDM trained on it, shared by the IDM tests."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from inference.training import record as rec
from inference.training import train_idm
from tests.inference.training.fakes import ACTIONS, FakeTeacher

logger = logging.getLogger(__name__)


class WrappingTeacher(FakeTeacher):
    """The fake world on a torus: every move scrolls the view (none is lost at an edge)."""

    def _frame(self) -> np.ndarray:
        rows = np.arange(self.y, self.y + 4) % 32
        cols = np.arange(self.x, self.x + 4) % 32
        tiles = self.world[np.ix_(rows, cols)]  # (4, 4, 3)
        return np.kron(tiles, np.ones((4, 4, 1), np.uint8))  # (16, 16, 3)

    def step(self, action: int) -> tuple[np.ndarray, bool]:
        dx, dy = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}.get(action, (0, 0))
        self.x, self.y = (self.x + dx) % 32, (self.y + dy) % 32
        self.steps += 1
        return self._frame(), self.steps >= self.life


TINY = ["--widths", "16,32", "--hidden", "64", "--batch", "32", "--threads", "1"]


def record_fake(out: Path, shards: int = 4, shard_frames: int = 600, seed: int = 5) -> Path:
    """A recorder folder (record.py's format) of a random walker in the wrapping fake world."""
    out.mkdir(parents=True)
    entries = []
    for index in range(shards):
        frames, actions = fake_frames(shard_frames, seed=seed * 100 + index)
        data = {
            "frames": frames,
            "actions": actions.astype(np.uint8),
            "held": actions.astype(np.uint8),
            "segment": np.zeros(shard_frames, np.int32),
        }
        entries.append(rec.write_shard(out, index, data))
    rec.save_manifest(
        out,
        {
            "config": {"teacher": "fake"},
            "action_names": list(ACTIONS),
            "frame_size": [16, 16],
            "shards": entries,
        },
    )
    return out


def train_fake_idm(data: Path, out: Path, steps: int = 800) -> Path:
    """An IDM of the fake teacher, trained by the real command on its first shards."""
    train_idm.main(
        [
            "--data",
            str(data),
            "--train-frames",
            "1200",
            "--holdout",
            "1",
            "--steps",
            str(steps),
            "--out",
            str(out),
            "--report",
            str(out.parent / "report"),
            *TINY,
        ]
    )
    return out


def fake_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n,16,16,3) uint8, actions (n,)) played by a random walker in the fake world."""
    teacher = WrappingTeacher()
    rng = np.random.default_rng(seed)
    frames, actions = [teacher.reset(seed)], [0]
    for _ in range(n - 1):
        action = int(rng.choice([0, 0, 1, 2, 3, 4]))
        frame, _ = teacher.step(action)
        frames.append(frame)
        actions.append(action)
    return np.stack(frames), np.array(actions)
