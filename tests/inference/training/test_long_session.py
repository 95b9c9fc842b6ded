"""The whole-session evaluation: scripted players, frame statistics, KID, and the CI guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from inference import SHIPPED_CHECKPOINT
from inference.cadence import KeyRepeat
from inference.engine_runtime import EngineRuntime
from inference.training import long_session as ls
from inference.training.features import kid
from inference.training.players import REGIMES, ScriptedPlayer

logger = logging.getLogger(__name__)

NAMES = (
    "noop",
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "do",
    "sleep",
    "place_stone",
    "place_table",
    "place_furnace",
    "place_plant",
    "make_wood_pickaxe",
    "make_stone_pickaxe",
    "make_iron_pickaxe",
    "make_wood_sword",
    "make_stone_sword",
    "make_iron_sword",
)


def _script(regime: str, frames: int = 2000, seed: int = 0) -> list[str]:
    player = ScriptedPlayer(regime, NAMES, seed)
    return [NAMES[player()] for _ in range(frames)]


def test_each_regime_holds_the_keys_it_is_named_for():
    idle, walk, mine, build = (_script(r) for r in ("idle", "walk", "mine", "build"))
    assert set(idle) == {"noop"}
    moves = [n for n in walk if n.startswith("move_")]
    assert len(moves) > 0.6 * len(walk) and len(set(moves)) == 4
    assert mine.count("do") > 0.3 * len(mine)
    assert any(n.startswith("place_") for n in build) and any(n.startswith("make_") for n in build)
    mixed = set(_script("mixed", 6000))
    assert {"do", "move_left", "noop"} <= mixed and any(n.startswith("place_") for n in mixed)


def test_walks_are_runs_of_8_to_40_frames_and_the_script_repeats_with_its_seed():
    walk = _script("walk", 4000, seed=5)
    runs, current, length = [], None, 0
    for name in walk + ["end"]:
        if name == current:
            length += 1
            continue
        if current and current.startswith("move_"):
            runs.append(length)
        current, length = name, 1
    # Two runs in the same direction can meet when a pause is zero frames long.
    assert min(runs) >= 8 and np.median(runs) <= 40
    assert walk == _script("walk", 4000, seed=5) and walk != _script("walk", 4000, seed=6)
    with pytest.raises(ValueError, match="unknown regime"):
        ScriptedPlayer("fly", NAMES)
    with pytest.raises(ValueError, match="lacks"):
        ScriptedPlayer("walk", ("noop", "jump"))
    assert set(REGIMES) == {"idle", "walk", "mine", "build", "mixed"}


def test_frame_statistics_tell_a_detailed_world_from_a_flat_field():
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 255, (1, 10, 10, 3)).astype(np.uint8)
    detailed = np.kron(tiles, np.ones((1, 7, 7, 1), np.uint8))[:, :64, :64]  # (1, 64, 64, 3)
    texture = rng.integers(0, 40, (1, 64, 64, 3)).astype(np.uint8)
    detailed = detailed // 2 + texture
    flat = np.full((1, 64, 64, 3), 90, np.uint8)
    d, f = ls.frame_stats(detailed), ls.frame_stats(flat)
    assert d["detail"][0] > 3 * ls.DETAIL_FLOOR and f["detail"][0] < 1e-3
    assert f["flat"][0] == 1.0 and d["flat"][0] < 0.1
    assert f["hist"].shape == (1, 64) and np.isclose(f["hist"].sum(), 1.0)
    assert abs(f["brightness"][0] - 90) < 0.5


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    far = rng.normal(loc=1.5, size=(400, 16))
    assert abs(kid(a, b)) < 0.1 * kid(a, far)
    with pytest.raises(ValueError, match="at least 2"):
        kid(a[:1], b)


def test_the_verdict_needs_no_collapse_and_figures_within_a_quarter_of_the_teacher():
    def row(seconds, detail, kid_value, collapsed=0):
        return {
            "seconds": seconds,
            "collapsed": collapsed,
            "model": {"detail": detail, "kid": kid_value},
            "teacher": {"detail": 40.0, "kid": 10.0},
        }

    good = ls.verdict([row(60, 35.0, 12.0), row(300, 45.0, 9.0)])
    assert good["collapse_free"] and good["detail_ok_1min"] and good["kid_ok_5min"]
    bad = ls.verdict([row(60, 25.0, 20.0), row(300, 8.0, 30.0, collapsed=3)])
    assert not bad["collapse_free"] and bad["collapsed_sessions_any_time"] == 3
    assert not bad["detail_ok_1min"] and not bad["kid_ok_1min"] and not bad["detail_ok_5min"]


def test_sampling_overrides_are_typed_and_refuse_unknown_names():
    assert ls.parse_sampling(["stabilization_level=101", "context_schedule=300,100,15"]) == {
        "stabilization_level": 101,
        "context_schedule": (300, 100, 15),
    }
    for bad in (["nothing=1"], ["context_schedule=high"], ["ddim_steps"], ["ddim_steps=x"]):
        with pytest.raises(ValueError):
            ls.parse_sampling(bad)


def test_the_standard_plan_covers_every_world_and_regime_and_quick_is_a_subset():
    worlds = ["a", "b", "c", "d", "e"]
    plans = ls.standard_plans(worlds)
    assert {p.world for p in plans} == set(worlds)
    assert {p.regime for p in plans} == set(REGIMES)
    assert {p.world for p in plans if p.regime == "walk"} == set(worlds)
    assert {p.world for p in plans if p.regime != "walk"} == set(worlds)  # two per world
    assert len({p.seed for p in plans}) == len(plans)
    assert set(ls.standard_plans(worlds, quick=True)) <= set(plans)


def test_the_teacher_plays_a_plan_from_the_world_spot():
    pytest.importorskip("crafter")
    world = {w["slug"]: w for w in ls.load_worlds()}["meadow"]
    log = ls._teacher_job(
        ({"seed": world["seed"], "tile": world["tile"]}, ls.Plan("meadow", "walk", 3), 400)
    )
    first = log.measured[0]
    # The spot is the shipped world's: its first frames look like the prompt.
    assert np.abs(first.astype(int) - world["frames"][-1].astype(int)).mean() < 40
    assert log.windows().shape[:2] == (2, 40)
    assert KeyRepeat()(1) == 1  # the player's keys go through the play cadence


# Sessions of the quick plan that the shipped model (DiT step 13,200) still loses within the
# minute. With clean context it walked the forest into a flat stone field at about 20 s; with
# trajectory context (shipped since) every quick session holds five minutes. Any session
# collapsing fails the guard, and so does a listed one holding again, so the list only shrinks.
STILL_COLLAPSING: set[str] = set()


@pytest.mark.slow
def test_the_shipped_model_holds_a_minute_of_walking_from_every_world():
    """CI guard: the quick plan (a walking session per world, fixed seeds) for one minute.

    Fails when a session's detail over a 10-s window falls below the evaluation's collapse
    floor (the flat fields and the endless night the first default models walked into), unless
    it is one of STILL_COLLAPSING; and when one of those stops collapsing.
    """
    runtime = EngineRuntime(str(SHIPPED_CHECKPOINT))
    worlds = {w["slug"]: w for w in ls.load_worlds()}
    plans = ls.standard_plans(list(worlds), quick=True)
    logs = ls.play_model(runtime, worlds, plans, frames=60 * ls.FPS)
    stats = ls.window_stats(logs)
    detail = stats["detail"]  # (sessions, windows)
    logger.info("detail per session and window:\n%s", np.round(detail, 1))
    assert detail.shape == (len(plans), 6)
    collapsed = {
        p for p, d in zip(stats["plans"], detail, strict=True) if d.min() < ls.DETAIL_FLOOR
    }
    assert collapsed <= STILL_COLLAPSING, (
        f"sessions collapsed below detail {ls.DETAIL_FLOOR}: {sorted(collapsed)}; detail "
        f"{np.round(detail, 1).tolist()}"
    )
    assert collapsed == STILL_COLLAPSING, (
        f"{sorted(STILL_COLLAPSING - collapsed)} held a minute: take them off STILL_COLLAPSING"
    )
