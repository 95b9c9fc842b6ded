"""Evaluation metrics on synthetic pictures, and the starting-scene recipes."""

from __future__ import annotations

import logging

import numpy as np

from inference.training.evaluate import MOVE_SHIFT, TILE, frame_shift, psnr_np
from inference.training.worlds import SCENES, matches, view_shares

logger = logging.getLogger(__name__)


def tiled_world(seed: int = 0) -> np.ndarray:
    tiles = np.random.default_rng(seed).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    return np.kron(tiles, np.ones((TILE, TILE, 1), np.uint8))  # (140, 140, 3)


def test_frame_shift_finds_the_scroll_of_each_move():
    world = tiled_world()
    before = world[35:99, 35:99]
    for name, (dx, dy) in MOVE_SHIFT.items():
        after = world[35 - dy * TILE : 99 - dy * TILE, 35 - dx * TILE : 99 - dx * TILE]
        assert frame_shift(before, after) == (dx, dy), name
    assert frame_shift(before, before) == (0, 0)
    assert MOVE_SHIFT["move_left"] == (1, 0)  # walking left scrolls the world right


def test_psnr_np_is_infinite_free_and_ordered():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr_np(a, a) == 100.0  # capped, not inf
    assert psnr_np(a, a + 1) > psnr_np(a, a + 10) > 0


def test_scene_recipes_select_the_matching_view():
    names = {0: "grass", 1: "water", 2: "sand", 3: "tree"}
    mat = np.zeros((30, 30), np.uint8)
    mat[15:, :] = 1  # water to the east (the first axis is x, as in Crafter)
    mat[12:15, :] = 2  # a sandy shore
    shares = view_shares(mat, names, 13, 10)
    assert abs(sum(shares.values()) - 1) < 1e-9
    coast = next(s for s in SCENES if s.slug == "coast")
    meadow = next(s for s in SCENES if s.slug == "meadow")
    assert matches(coast, shares) and not matches(meadow, shares)
    assert matches(meadow, view_shares(mat, names, 5, 10))


def test_prediction_and_action_metrics_run_on_a_random_model():
    import torch

    from inference.training.evaluate import eval_actions, eval_prediction, eval_speed
    from tests.inference.helpers import make_engine
    from tests.inference.training.test_train import MINI, tiny_recording

    engine = make_engine(MINI)
    test = tiny_recording(64, 2, segment=64)
    # Frames that scroll under the recorded moves, so some cases count as teacher moves.
    world = np.kron(
        np.random.default_rng(0).integers(0, 255, (30, 30, 3), dtype=np.uint8),
        np.ones((TILE, TILE, 1), np.uint8),
    )
    x = y = 70
    for i, a in enumerate(test.actions):
        dx, dy = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}.get(int(a), (0, 0))
        x, y = x + dx * TILE, y + dy * TILE
        test.frames[i] = world[y : y + 16, x : x + 16]
    with torch.no_grad():
        latents = engine.encode_frames(test.frames)
    pred = eval_prediction(engine, test, latents, cases=4, context=2, horizons=(1, 4))
    assert set(pred) == {1, 4}
    assert all(0 < p["model"] <= 100 and 0 < p["repeat"] <= 100 for p in pred.values())
    act = eval_actions(engine, test, latents, cases=5, context=3)
    assert 0 < act["cases"] <= 5 and 0 <= act["true_move"] <= 1 and 0 <= act["all_moves"] <= 1
    speed = eval_speed(engine, test.frames[:1], 2, frames=3)
    assert speed["sessions"] == 2 and speed["fps"] > 0 and speed["p95_ms"] >= speed["p50_ms"]
