"""The train-from-video experiment's data phases: videos with hidden labels, IDM labels, twin."""

from __future__ import annotations

import json
import logging

import numpy as np

from inference.training import idm_experiment
from inference.training.data import load_recording
from tests.inference.training.idm_fixtures import record_fake, train_fake_idm

logger = logging.getLogger(__name__)


def test_videos_are_labelled_and_twinned_with_the_hidden_truth(tmp_path, capsys):
    idm = train_fake_idm(record_fake(tmp_path / "labelled"), tmp_path / "idm.safetensors")
    source = record_fake(tmp_path / "source", shards=2, shard_frames=300, seed=9)
    work = tmp_path / "work"
    run = [
        "--source",
        str(source),
        "--idm",
        str(idm),
        "--work",
        str(work),
        "--phases",
        "videos,label,twin",
    ]
    idm_experiment.main(run)
    assert sorted(p.name for p in (work / "videos").iterdir()) == [
        "shard_00000.mp4",
        "shard_00001.mp4",
    ]
    from_video = load_recording(work / "from-video", "all")
    twin = load_recording(work / "true-labels", "all")
    truth = load_recording(source, "all")
    assert np.array_equal(from_video.frames, twin.frames)  # the same decoded frames
    assert np.array_equal(twin.actions, truth.actions)  # with the hidden labels
    # Through H.264 the pixels move a little, the picture does not.
    assert np.abs(twin.frames.astype(int) - truth.frames).mean() < 4
    report = json.loads((work / "label_accuracy.json").read_text())
    assert report["frames"] == 598 and report["accuracy"] > 0.9
    agree = (from_video.actions == truth.actions)[1:].mean()
    assert abs(agree - report["accuracy"]) < 0.01
    # A second run finds every phase done and changes nothing.
    stamp = (work / "from-video" / "manifest.json").stat().st_mtime_ns
    idm_experiment.main(run)
    assert (work / "from-video" / "manifest.json").stat().st_mtime_ns == stamp
