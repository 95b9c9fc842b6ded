"""Training the inverse-dynamics model: windows, learning a real rule, the saved file, bad flags."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from inference.checkpoints import CheckpointError
from inference.idm import IDMConfig, InverseDynamics, load_idm, save_idm
from inference.training import train_idm
from inference.training.idm_report import evaluate_predictions
from tests.inference.training.fakes import ACTIONS
from tests.inference.training.idm_fixtures import record_fake, train_fake_idm

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("idm")
    data = record_fake(root / "data")
    return data, train_fake_idm(data, root / "idm.safetensors")


def test_windows_are_clamped_to_their_own_segment():
    segments = np.array([0, 0, 0, 1, 1, 2])
    index = train_idm.window_indices(segments, before=1, after=1)
    assert index.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 4], [3, 4, 4], [5, 5, 5]]
    wide = train_idm.window_indices(np.array([0, 0, 1, 1, 1]), before=2, after=1)
    assert wide[3].tolist() == [2, 2, 3, 4]  # nothing of segment 0 leaks into segment 1


def test_segment_starts_are_left_out_of_training(trained):
    data, _ = trained
    from inference.training.data import load_recording

    recording = load_recording(data, "all")
    windows = train_idm.WindowSet(recording, IDMConfig(frame_size=(16, 16)))
    starts = np.nonzero(train_idm.segment_starts(recording.segments))[0]
    assert not np.isin(windows.rows.numpy(), starts).any()
    assert len(windows) == len(recording) - len(starts)


def test_it_learns_the_moves_from_a_small_labelled_set(trained):
    _, path = trained
    meta = load_idm(path).meta
    # Moves scroll the fake world one tile: plainly visible, so they must be learnt.
    for move in ("move_left", "move_right", "move_up", "move_down"):
        assert meta["per_action"][move]["recall"] > 0.85, (move, meta["per_action"][move])
    assert meta["changed_accuracy"] > 0.9
    assert meta["train_frames"] < 1200  # segment starts left out of the 1,200 frames


def test_the_file_holds_config_actions_and_figures(trained, tmp_path):
    _, path = trained
    loaded = load_idm(path)
    assert loaded.action_space.names == ACTIONS
    assert loaded.config.frame_size == (16, 16) and loaded.config.widths == (16, 32)
    assert (
        json.loads((path.parent / "report" / "report.json").read_text())["accuracy"]
        == (loaded.meta["accuracy"])
    )
    assert (path.parent / "report" / "confusion.png").stat().st_size > 1000
    x = torch.rand(3, 3, 3, 16, 16)
    again = save_idm(tmp_path / "copy.safetensors", loaded.model, loaded.action_space)
    assert torch.equal(load_idm(again).model(x), loaded.model(x))


def test_loading_refuses_what_is_not_an_idm(tmp_path):
    world = tmp_path / "world.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, world, metadata={"format": "reverie-world"})
    with pytest.raises(CheckpointError, match="not an inverse-dynamics model"):
        load_idm(world)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is no model")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_idm(junk)


def test_a_truncated_file_is_refused(trained, tmp_path):
    _, path = trained
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_idm(cut)


def test_the_report_counts_confusion_and_confidence():
    probs = np.array([[0.95, 0.05], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 1])
    changed = np.array([False, True, True, True])
    report = evaluate_predictions(probs, labels, changed, ("noop", "move"), confident=0.9)
    assert report.confusion.tolist() == [[1, 0], [1, 2]]
    assert report.accuracy == 0.75 and report.changed_accuracy == pytest.approx(2 / 3)
    assert report.confident_share == 0.5 and report.confident_accuracy == 1.0
    assert report.unsure_accuracy == 0.5
    assert "move" in report.table()


def test_bad_flags_are_refused(trained, capsys):
    data, _ = trained
    for flags, message in (
        (["--widths", "16,x"], "--widths"),
        (["--widths", "12"], "multiple of 8"),
        (["--train-frames", "5"], "--train-frames"),
        (["--action-space", "crafter-17"], "are not those of"),
    ):
        with pytest.raises(SystemExit) as exit_:
            train_idm.main(["--data", str(data), *flags])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_idm.main(["--data", str(data / "missing")])
    assert "--data" in capsys.readouterr().err


def test_the_network_takes_windows_of_any_batch():
    model = InverseDynamics(IDMConfig(frame_size=(16, 16), widths=(8, 16), hidden=32), 7)
    assert model(torch.rand(5, 3, 3, 16, 16)).shape == (5, 7)
