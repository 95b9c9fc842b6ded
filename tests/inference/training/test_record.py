"""The recorder: cadence in the data, manifest, resumability, segments, the real teacher."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from inference.training import record as rec
from inference.training import teachers
from inference.training.data import ClipSampler, load_recording
from inference.training.policy import HumanlikePolicy
from tests.inference.training.fakes import ACTIONS, FakeTeacher

logger = logging.getLogger(__name__)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(teachers.TEACHERS, "fake", FakeTeacher)
    return rec.RecordConfig(teacher="fake", shard_frames=300, period=4, seed=3)


def test_recorded_actions_follow_the_play_cadence(fake):
    data = rec.record_shard(fake, 0)
    actions, held = data["actions"], data["held"]
    assert data["frames"].shape == (300, 16, 16, 3)
    # Replaying the held keys through a fresh gate gives exactly the recorded actions.
    gate, replay = rec.KeyRepeat(4), []
    for i in range(1, 300):
        replay.append(gate(int(held[i])))
    assert replay == actions[1:].tolist()
    moving = np.isin(actions, (1, 2, 3, 4))
    assert 0 < moving.mean() < 0.5  # moves happen, and most frames are between moves


def test_it_writes_a_manifest_and_resumes(fake, tmp_path):
    rec.record(tmp_path, 600, fake)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == ["shard_00000.npz", "shard_00001.npz"]
    assert manifest["action_names"] == list(ACTIONS)
    first = (tmp_path / "shard_00000.npz").stat().st_mtime_ns
    (tmp_path / "shard_00001.npz").unlink()  # as if killed before the second shard landed
    rec.record(tmp_path, 900, fake)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["index"] for s in manifest["shards"]] == [0, 1, 2]
    assert (tmp_path / "shard_00000.npz").stat().st_mtime_ns == first  # not re-recorded
    with pytest.raises(ValueError, match="recorded with"):
        rec.record(tmp_path, 900, rec.RecordConfig(teacher="fake", shard_frames=100))


def test_clips_never_cross_a_reset(fake, tmp_path, monkeypatch):
    monkeypatch.setitem(
        teachers.TEACHERS, "fake", lambda **options: FakeTeacher(life=50, **options)
    )
    rec.record(tmp_path, 600, fake)
    data = load_recording(tmp_path, "train", holdout=1)
    assert data.segments.max() >= 5
    starts = data.clip_starts(8)
    assert all(len(set(data.segments[s : s + 8])) == 1 for s in starts)
    latents = np.zeros((len(data), 4, 2, 2), np.float32)
    sampler = ClipSampler(torch.from_numpy(latents), data, 8, len(ACTIONS))
    x, a = sampler.sample(5)
    assert x.shape == (5, 8, 4, 2, 2) and a.shape == (5, 8, len(ACTIONS))
    assert torch.all(a.sum(-1) == 1)


def test_the_policy_walks_far_and_does_not_sleep():
    policy = HumanlikePolicy(ACTIONS, seed=1)
    held = [policy() for _ in range(4000)]
    assert ACTIONS.index("sleep") not in held
    counts = np.bincount(held, minlength=len(ACTIONS))
    assert counts[1:5].sum() > 0.3 * len(held) and counts[5] > 0 and counts[0] > 0
    runs, run = [], 1
    for a, b in zip(held, held[1:], strict=False):
        run = run + 1 if a == b else 1
        runs.append(run)
    assert max(runs) >= 20  # long holds: walks of many tiles, not one-frame jitter


def test_the_crafter_teacher_records_headless(tmp_path):
    pytest.importorskip("crafter")
    cfg = rec.RecordConfig(teacher="crafter", shard_frames=120, seed=0)
    data = rec.record_shard(cfg, 0)
    assert data["frames"].shape == (120, 64, 64, 3)
    assert data["frames"].std() > 10


def test_a_fixed_daylight_keeps_crafter_bright_through_the_night():
    pytest.importorskip("crafter")
    brightness = {}
    for light in (None, 1.0):
        teacher = teachers.CrafterTeacher(daylight=light)
        teacher.reset(3)
        frames = [teacher.step(0)[0] for _ in range(215)]
        # Step 210 is the middle of Crafter's night; step 60 its noon.
        brightness[light] = (frames[59][:49].mean(), frames[209][:49].mean())
    day_noon, day_night = brightness[1.0]
    assert abs(day_night - day_noon) < 1.0
    cycle_noon, cycle_night = brightness[None]
    assert cycle_night < cycle_noon - 5  # the teacher's own cycle does darken


def test_the_daylight_flag_takes_a_level_or_cycle():
    assert rec._daylight("cycle") is None and rec._daylight("0.5") == 0.5
    for bad in ("dusk", "1.5"):
        with pytest.raises(Exception, match="daylight|cycle"):
            rec._daylight(bad)
