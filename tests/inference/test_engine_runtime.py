"""EngineRuntime: the worker's seam over the engine, served from a checkpoint on disk."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from inference.actions import ActionEncoder, BrowserInput, get_action_space
from inference.checkpoints import CheckpointError, save_checkpoint
from inference.engine_runtime import EngineRuntime
from inference.models import build_autoencoder, build_dit, randomize_
from inference.runtime import load_runtime
from tests.inference.helpers import MINI

logger = logging.getLogger(__name__)


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "mini.safetensors"
    dit = randomize_(build_dit(MINI.dit), 0)
    ae = randomize_(build_autoencoder(MINI.autoencoder), 1)
    save_checkpoint(path, MINI, dit, ae, get_action_space("crafter-17"))
    return path


def press(name: str) -> np.ndarray:
    vec = np.zeros(17, np.float32)
    vec[get_action_space("crafter-17").index(name)] = 1
    return vec


def test_it_serves_sessions_from_a_checkpoint(checkpoint):
    runtime = load_runtime(
        "inference.engine_runtime.EngineRuntime", checkpoint=str(checkpoint), device="cpu"
    )
    runtime.warm()
    assert runtime.frame_size == (16, 16)
    assert runtime.action_names[:3] == ("noop", "move_left", "move_right")
    runtime.start("a", np.zeros((2, 16, 16, 3), np.uint8))
    runtime.start("b", np.full((1, 40, 30, 3), 200, np.uint8))  # resized to 16x16
    frames = runtime.step({"a": press("move_left"), "b": np.zeros(17, np.float32)})
    assert set(frames) == {"a", "b"}
    assert frames["a"].shape == (16, 16, 3) and frames["a"].dtype == np.uint8
    assert set(runtime.step({"b": press("do")})) == {"b"}
    runtime.stop("a")
    runtime.stop("a")  # idempotent
    assert runtime.step({"a": press("do")}) == {}


def test_its_sessions_encoders_gate_held_keys_at_the_play_cadence(checkpoint, monkeypatch):
    runtime = EngineRuntime(str(checkpoint), key_repeat=4)
    runtime.start("s", np.zeros((1, 16, 16, 3), np.uint8))
    encoder = ActionEncoder(runtime.action_space, runtime.key_repeat)  # as the worker does
    seen = []
    real_step = runtime.engine.step

    def spy(vectors, sessions=None):
        seen.append(int(vectors["s"].argmax()))
        return real_step(vectors, sessions)

    monkeypatch.setattr(runtime.engine, "step", spy)
    for _ in range(9):
        runtime.step({"s": encoder.encode(BrowserInput(keys=frozenset({"KeyW"})))})
    runtime.step({"s": encoder.encode(BrowserInput())})
    runtime.step({"s": encoder.encode(BrowserInput(keys=frozenset({"Space"})))})
    up, do = runtime.action_names.index("move_up"), runtime.action_names.index("do")
    assert seen == [up, 0, 0, 0, up, 0, 0, 0, up, 0, do]


def test_it_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        EngineRuntime(str(tmp_path / "nothing.safetensors"))


def test_it_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        EngineRuntime(str(bad))


def test_it_needs_a_checkpoint_and_names_the_setting_that_gives_one():
    with pytest.raises(ValueError, match="DEFAULT_CHECKPOINT"):
        EngineRuntime("")
