"""Labelled video as a recording: the recorder's shards and manifest (record.py), appended.

Frames stream in while their labels are still being computed (the labeller works in batches a
window behind), so each full shard's frames wait in a staging folder inside the recording as a
plain .npy; `finish` writes the real shards with frames, actions, held keys, segment ids and
the IDM's confidence, renames them in under the next free indices and updates the manifest.
`abort` (or a crash) leaves only the staging folder, which the next run clears: the shards and
manifest a trainer reads are never half-written.

A video is one continuous piece of play: one segment per shard (clips never straddle shards
anyway). The key a player held is unknown in a video, so `held` repeats the label.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from .record import MANIFEST, load_manifest, save_manifest, shard_name, write_shard

logger = logging.getLogger(__name__)

SHARD_FRAMES = 2000


class RecordingError(ValueError):
    """The recording folder cannot take this video; the message is one line."""


class RecordingWriter:
    """Appends one labelled video to a recorder folder."""

    def __init__(self, folder: Path, names, frame_size, source: str, idm: Path):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise RecordingError(f"--recording {folder}: exists and is not a folder")
        self.manifest = load_manifest(self.folder)
        self.names, self.frame_size = list(names), list(frame_size)
        held = self.manifest.get("action_names")
        if held is not None and (
            held != self.names or self.manifest.get("frame_size") != self.frame_size
        ):
            raise RecordingError(
                f"--recording {folder}: holds {self.manifest.get('frame_size')} frames with "
                f"actions {held}, not this IDM's {self.frame_size} with {self.names}"
            )
        self.source, self.idm = source, str(idm)
        self.staging = self.folder / f".staging-{os.getpid()}"
        for old in self.folder.glob(".staging-*"):  # a crashed run's leftovers
            shutil.rmtree(old, ignore_errors=True)
        self.staging.mkdir(parents=True)
        self.buffer: list[np.ndarray] = []
        self.parts: list[Path] = []

    def add(self, frame: np.ndarray) -> None:
        """One model-size frame, uint8 (H,W,3)."""
        self.buffer.append(frame)
        if len(self.buffer) == SHARD_FRAMES:
            self._spill()

    def _spill(self) -> None:
        part = self.staging / f"part_{len(self.parts):05d}.npy"
        np.save(part, np.stack(self.buffer))  # (n,H,W,3)
        self.parts.append(part)
        self.buffer = []

    def finish(self, actions: np.ndarray, confidence: np.ndarray) -> list[dict]:
        """Write the shards with their labels and add them to the manifest; the new entries."""
        if self.buffer:
            self._spill()
        start = max((s["index"] for s in self.manifest["shards"]), default=-1) + 1
        entries, offset = [], 0
        for n, part in enumerate(self.parts):
            frames = np.load(part)
            labels = actions[offset : offset + len(frames)].astype(np.uint8)
            data = {
                "frames": frames,
                "actions": labels,
                "held": labels,
                "segment": np.zeros(len(frames), np.int32),
                "confidence": confidence[offset : offset + len(frames)],
            }
            entry = write_shard(self.staging, start + n, data)
            entries.append({**entry, "source": self.source})
            offset += len(frames)
        if offset != len(actions):
            self.abort()
            raise RecordingError(f"{offset} frames staged for {len(actions)} labels")
        for entry in entries:
            os.replace(self.staging / entry["file"], self.folder / shard_name(entry["index"]))
        self.manifest.setdefault("config", {"teacher": "video", "labelled_by": self.idm})
        self.manifest.update(action_names=self.names, frame_size=self.frame_size)
        self.manifest["shards"] = sorted(
            self.manifest["shards"] + entries, key=lambda s: s["index"]
        )
        save_manifest(self.folder, self.manifest)
        shutil.rmtree(self.staging, ignore_errors=True)
        logger.info("appended %d shard(s) to %s (%s)", len(entries), self.folder, MANIFEST)
        return entries

    def abort(self) -> None:
        """Drop what was staged; the folder is as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.folder.exists() and not any(self.folder.iterdir()):
            self.folder.rmdir()  # made for this run only
