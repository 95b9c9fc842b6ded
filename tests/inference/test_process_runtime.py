"""ProcessRuntime: a WorldRuntime in a child process, same answers, errors and deaths reported."""

from __future__ import annotations

import time

import numpy as np
import pytest

from inference.actions import get_action_space
from inference.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from inference.models import build_autoencoder, build_dit, randomize_
from inference.placeholder import PlaceholderRuntime
from inference.process_runtime import ModelProcessError, ProcessRuntime
from inference.runtime import load_runtime
from tests.inference.helpers import MINI

PLACEHOLDER = "inference.placeholder.PlaceholderRuntime"
ENGINE = "inference.engine_runtime.EngineRuntime"


@pytest.fixture
def served():
    runtimes = []

    def serve(target=PLACEHOLDER, **options):
        runtimes.append(ProcessRuntime(target, **options))
        return runtimes[-1]

    yield serve
    for runtime in runtimes:
        runtime.close()


def test_the_placeholder_in_a_process_answers_as_it_does_here(served):
    remote, local = served(height=32, width=48), PlaceholderRuntime(height=32, width=48)
    assert remote.frame_size == local.frame_size == (32, 48)
    assert remote.action_names == local.action_names
    assert remote.action_space == local.action_space and remote.key_repeat == local.key_repeat
    prompt = np.random.default_rng(0).integers(0, 255, (1, 32, 48, 3), dtype=np.uint8)
    for runtime in (remote, local):
        runtime.warm()
        runtime.start("a", prompt)
    right = np.eye(len(local.action_names), dtype=np.float32)[local.action_names.index("right")]
    for _ in range(3):
        got, want = remote.step({"a": right}), local.step({"a": right})
        assert set(got) == {"a"}
        np.testing.assert_array_equal(got["a"], want["a"])
    remote.stop("a")
    remote.stop("a")  # idempotent, as in-process


def test_the_engine_in_a_process_gives_the_frames_it_gives_here(tmp_path, served):
    path = tmp_path / "mini.safetensors"
    dit = randomize_(build_dit(MINI.dit), 0)
    ae = randomize_(build_autoencoder(MINI.autoencoder), 1)
    save_checkpoint(path, MINI, dit, ae, get_action_space("crafter-17"))
    options = {"checkpoint": str(path), "device": "cpu", "dtype": "float32", "seed": 3}
    remote, local = served(ENGINE, **options), load_runtime(ENGINE, **options)
    assert remote.action_space.name == local.action_space.name == "crafter-17"
    prompt = np.full((1, 16, 16, 3), 90, np.uint8)
    move = np.zeros(17, np.float32)
    move[local.action_space.index("move_left")] = 1
    for runtime in (remote, local):
        runtime.start("s", prompt)
    for _ in range(2):
        np.testing.assert_array_equal(remote.step({"s": move})["s"], local.step({"s": move})["s"])


def test_the_runtimes_own_errors_are_raised_here_and_the_process_carries_on(served):
    runtime = served()
    with pytest.raises(ValueError, match=r"\(P,H,W,3\)"):
        runtime.start("a", np.zeros((64, 64), np.uint8))
    runtime.start("a", np.zeros((1, 64, 64, 3), np.uint8))
    assert set(runtime.step({"a": np.zeros(5, np.float32)})) == {"a"}


def test_a_runtime_that_cannot_be_built_fails_the_constructor_with_its_error():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ProcessRuntime(ENGINE, checkpoint="/nonexistent/model.safetensors", device="cpu")
    with pytest.raises(ModuleNotFoundError):
        ProcessRuntime("inference.no_such_module.Runtime")


def test_a_dead_model_process_is_reported_and_close_still_works(served):
    runtime = served()
    runtime.start("a", np.zeros((1, 64, 64, 3), np.uint8))
    runtime._process.kill()
    runtime._process.join(5)
    with pytest.raises(ModelProcessError, match="exited"):
        runtime.step({"a": np.zeros(5, np.float32)})
    runtime.close()
    runtime.close()
    runtime.stop("a")  # nothing left to forget
    with pytest.raises(ModelProcessError):
        runtime.start("b", np.zeros((1, 64, 64, 3), np.uint8))


class SlowRuntime(PlaceholderRuntime):
    """A placeholder whose steps take `delay` seconds, as a hung device would."""

    def __init__(self, delay: float = 0.0, **options):
        super().__init__(**options)
        self.delay = delay

    def step(self, actions):
        time.sleep(self.delay)
        return super().step(actions)


def test_a_model_process_that_does_not_answer_in_time_is_killed_and_stays_failed(served):
    runtime = served(f"{__name__}.SlowRuntime", delay=30.0, call_timeout=0.5)
    runtime.start("a", np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ModelProcessError, match="did not answer step"):
        runtime.step({"a": np.zeros(5, np.float32)})
    assert not runtime.is_alive() and not runtime._process.is_alive()
    with pytest.raises(ModelProcessError, match="did not answer step"):  # not a late answer
        runtime.step({"a": np.zeros(5, np.float32)})


def test_a_checkpoint_error_crosses_with_its_type_and_the_childs_traceback(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_bytes(b"not a safetensors file")
    runtime = ProcessRuntime(f"{__name__}.CheckpointOnStart", path=str(bad))
    try:
        with pytest.raises(CheckpointError, match="notes.safetensors") as raised:
            runtime.start("a", np.zeros((1, 64, 64, 3), np.uint8))
        assert any("model process" in note for note in raised.value.__notes__)
        assert runtime.is_alive()  # the runtime's own error: the process carries on
    finally:
        runtime.close()


class CheckpointOnStart(PlaceholderRuntime):
    """A placeholder that reads a checkpoint file when a session starts."""

    def __init__(self, path: str = "", **options):
        super().__init__(**options)
        self.path = path

    def start(self, session_id, prompt_frames):
        load_checkpoint(self.path)
