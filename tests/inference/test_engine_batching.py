"""Batched sessions: each one sees exactly what it would see alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.actions import BrowserInput
from tests.inference.helpers import MINI, make_engine, random_actions, random_latents

TOL = 1e-5


def solo_run(prompt, actions, seed, frames, **options):
    """Latents of one session stepped alone for `frames` frames."""
    engine = make_engine("tiny", **options)
    engine.add_session("solo", prompt_latents=prompt, seed=seed)
    return torch.stack([engine.step_latents({"solo": actions[i]})["solo"] for i in range(frames)])


@pytest.mark.parametrize("mode", ["exact", "rolling"])
def test_batched_sessions_match_each_session_run_alone(mode):
    engine = make_engine("tiny", window_mode=mode)
    frames = 2 * engine.window + 1
    plans = {  # different prompt lengths (so ragged contexts), actions and noise
        "a": (random_latents(engine, 1, 10), random_actions(frames, 25, 11), 12),
        "b": (random_latents(engine, 3, 20), random_actions(frames, 25, 21), 22),
        "c": (random_latents(engine, 2, 30), random_actions(frames, 25, 31), 32),
    }
    for sid, (prompt, _, seed) in plans.items():
        engine.add_session(sid, prompt_latents=prompt, seed=seed)
    batched = {sid: [] for sid in plans}
    for i in range(frames):
        out = engine.step_latents({sid: plan[1][i] for sid, plan in plans.items()})
        for sid, latent in out.items():
            batched[sid].append(latent)
    for sid, (prompt, actions, seed) in plans.items():
        alone = solo_run(prompt, actions, seed, frames, window_mode=mode)
        assert (torch.stack(batched[sid]) - alone).abs().max().item() <= TOL, sid


def test_a_session_joining_and_leaving_between_frames_does_not_disturb_another():
    engine = make_engine("tiny", window_mode="rolling")
    prompt, actions = random_latents(engine, 1, 1), random_actions(10, 25, 2)
    engine.add_session("steady", prompt_latents=prompt, seed=3)
    got = []
    for i in range(10):
        if i == 2:
            engine.add_session("guest", prompt_latents=random_latents(engine, 2, 4), seed=5)
        if i == 4:
            engine.add_session("late", prompt_latents=random_latents(engine, 1, 6), seed=7)
        if i == 6:
            assert engine.remove_session("guest")
        got.append(engine.step_latents({"steady": actions[i]})["steady"])
    alone = solo_run(prompt, actions, 3, 10, window_mode="rolling")
    assert (torch.stack(got) - alone).abs().max().item() <= TOL
    assert engine.sessions == ["steady", "late"]


def test_stepping_a_subset_leaves_the_other_sessions_untouched():
    engine = make_engine("tiny")
    prompt, actions = random_latents(engine, 1, 1), random_actions(6, 25, 2)
    engine.add_session("moving", prompt_latents=prompt, seed=3)
    engine.add_session("paused", prompt_latents=random_latents(engine, 1, 4), seed=5)
    got = []
    for i in range(6):
        sessions = ["moving"] if i % 2 else None  # the paused session skips odd frames
        got.append(engine.step_latents({"moving": actions[i]}, sessions=sessions)["moving"])
    assert (torch.stack(got) - solo_run(prompt, actions, 3, 6)).abs().max().item() <= TOL
    fourth = engine.step_latents(sessions=["paused"])["paused"]  # it skipped 3 of 6 frames
    alone = solo_run(random_latents(engine, 1, 4), torch.zeros(4, 25), 5, 4)[-1]
    assert (fourth - alone).abs().max().item() <= TOL


def test_step_returns_one_uint8_rgb_frame_per_session_at_the_model_size():
    engine = make_engine("tiny")
    for sid in ("a", "b"):
        engine.add_session(sid, prompt_latents=random_latents(engine, 1, 0), seed=1)
    frames = engine.step({"a": torch.zeros(25)})
    assert set(frames) == {"a", "b"}
    for frame in frames.values():
        assert frame.dtype == np.uint8 and frame.shape == (*engine.frame_size, 3)
    assert engine.frame_size == (120, 160)


def test_step_decodes_exactly_the_new_latent():
    twins = [make_engine("tiny"), make_engine("tiny")]
    for engine in twins:
        engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=1)
    latent = twins[0].step_latents()["s"]
    frame = twins[1].step()["s"]
    assert np.array_equal(frame, twins[0].decode_latents(latent[None])[0])


def test_prompt_frames_are_encoded_to_latents_of_the_model():
    engine = make_engine("tiny")
    frames = np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    engine.add_session("pixels", prompt_frames=frames, seed=0)
    out = engine.step()["pixels"]
    assert out.shape == (120, 160, 3)
    with pytest.raises(ValueError, match="uint8"):
        engine.add_session("bad", prompt_frames=frames.astype(np.float32))


def test_malformed_input_becomes_a_no_op_and_the_reason_is_recorded():
    engine = make_engine("tiny")
    twin = make_engine("tiny")
    for e in (engine, twin):
        e.add_session("s", prompt_latents=random_latents(e, 1, 0), seed=1)
    bad = engine.step_latents({"s": torch.full((25,), float("nan"))})["s"]
    assert "finite" in engine.rejections["s"]
    assert torch.equal(bad, twin.step_latents({"s": torch.zeros(25)})["s"])
    engine.step_latents({"s": [1.0] * 3})
    assert "25" in engine.rejections["s"]
    engine.step_latents({"s": engine.action_space.encode(BrowserInput(keys=frozenset({"KeyW"})))})
    assert engine.rejections == {}


def test_actions_for_a_session_that_is_not_live_raise_key_error():
    engine = make_engine("tiny")
    engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=1)
    with pytest.raises(KeyError, match="ghost"):
        engine.step({"ghost": torch.zeros(25)})
    with pytest.raises(KeyError, match="ghost"):
        engine.step(sessions=["ghost"])


def test_an_engine_without_sessions_steps_to_nothing():
    assert make_engine("tiny").step() == {}


def test_removing_a_session_twice_is_harmless():
    engine = make_engine("tiny")
    engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=1)
    assert engine.remove_session("s") is True
    assert engine.remove_session("s") is False
    assert engine.sessions == []


def test_a_session_id_cannot_join_twice():
    engine = make_engine("tiny")
    engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=1)
    with pytest.raises(ValueError, match="already live"):
        engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=1)


def test_warm_leaves_no_session_behind():
    engine = make_engine("tiny")
    engine.warm()
    assert engine.sessions == []


def test_a_bf16_engine_decodes_conv_frames_in_bf16_within_a_level_or_two_of_float32():
    fast, exact = make_engine(MINI, dtype="bfloat16"), make_engine(MINI, dtype="float32")
    assert fast._decoder is not None and exact._decoder is None
    assert make_engine("tiny", dtype="bfloat16")._decoder is None  # ViT: float32, as Oasis
    latents = torch.randn(3, *fast.latent_shape, generator=torch.Generator().manual_seed(0))
    a = fast.decode_latents(latents).astype(int)
    b = exact.decode_latents(latents).astype(int)
    assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.5
