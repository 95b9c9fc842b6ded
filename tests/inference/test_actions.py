"""Browser input to action vectors: layouts, camera quantisation, and refusing bad input."""

from __future__ import annotations

import math

import pytest
import torch

from inference.actions import (
    ActionInputError,
    ActionSpace,
    InputState,
    get_action_space,
    parse_browser_input,
)

OASIS = get_action_space("oasis-25")
CRAFTER = get_action_space("crafter-17")


def test_the_oasis_layout_has_25_entries_in_the_reference_order():
    names = [f.name for f in OASIS.fields]
    assert len(names) == 25
    assert names[:3] == ["inventory", "ESC", "hotbar.1"]
    assert names[10:17] == ["hotbar.9", "forward", "back", "left", "right", "cameraX", "cameraY"]
    assert names[17:] == ["jump", "sneak", "sprint", "swapHands", "attack", "use", "pickItem",
                          "drop"]


def test_held_keys_and_mouse_buttons_set_their_buttons():
    vec = OASIS.encode({"keys": ["KeyW", "Space", "ShiftLeft"], "buttons": [0, 2]})
    on = {OASIS.fields[i].name for i in vec.nonzero().flatten().tolist()}
    assert on == {"forward", "jump", "sneak", "attack", "use"}


def test_unknown_key_codes_are_ignored():
    assert torch.equal(OASIS.encode({"keys": ["F13", "KeyZ"]}), OASIS.zeros())


def test_mouse_motion_is_quantised_to_half_degree_bins_of_the_camera():
    vec = OASIS.encode({"mouse": {"dx": 10.0, "dy": -4.0}})  # 1.5 and -0.6 degrees at 0.15/px
    assert vec[OASIS.index("cameraY")].item() == pytest.approx(3 / 40)  # yaw from dx
    assert vec[OASIS.index("cameraX")].item() == pytest.approx(-1 / 40)  # pitch from dy
    assert (vec[[15, 16]] * 40).round().sub(vec[[15, 16]] * 40).abs().max() < 1e-6


def test_huge_mouse_motion_is_clamped_to_twenty_degrees():
    vec = OASIS.encode({"mouse": {"dx": 1e9, "dy": -1e9}})
    assert vec[16].item() == 1.0 and vec[15].item() == -1.0


def test_the_wheel_steps_through_the_hotbar_and_remembers_the_slot():
    state = InputState()
    first = OASIS.encode({"wheel": 120}, state)
    assert first[OASIS.index("hotbar.2")] == 1 and state.hotbar == 1
    OASIS.encode({"keys": ["Digit9"]}, state)
    wrapped = OASIS.encode({"wheel": 3}, state)
    assert wrapped[OASIS.index("hotbar.1")] == 1 and state.hotbar == 0
    back = OASIS.encode({"wheel": -1}, state)
    assert back[OASIS.index("hotbar.9")] == 1


@pytest.mark.parametrize("raw, reason", [
    ([1, 2], "must be an object"),
    ({"keys": "KeyW"}, "keys must be a list"),
    ({"keys": [1]}, "KeyboardEvent.code"),
    ({"keys": ["Key"] * 33}, "at most 32"),
    ({"mouse": {"dx": float("nan")}}, "finite"),
    ({"mouse": {"dx": float("inf")}}, "finite"),
    ({"mouse": {"dx": "3"}}, "must be a number"),
    ({"mouse": {"dx": True}}, "must be a number"),
    ({"mouse": {"dz": 1}}, "only dx and dy"),
    ({"buttons": [7]}, "0..4"),
    ({"buttons": [0.5]}, "0..4"),
    ({"wheel": None}, "must be a number"),
    ({"keys": [], "gamepad": {}}, "unknown input field"),
])
def test_malformed_input_is_rejected_with_a_reason(raw, reason):
    with pytest.raises(ActionInputError, match=reason):
        OASIS.encode(raw)


def test_the_input_error_is_a_value_error():
    assert issubclass(ActionInputError, ValueError)


def test_an_empty_message_is_no_input():
    assert parse_browser_input({}).keys == frozenset()
    assert torch.equal(OASIS.encode({}), OASIS.zeros())


def test_vectors_from_code_are_checked_and_clamped():
    raw = torch.zeros(25)
    raw[0], raw[15], raw[16] = 3.0, -7.0, 0.5
    vec = OASIS.check_vector(raw)
    assert (vec[0], vec[15], vec[16]) == (1.0, -1.0, 0.5)
    with pytest.raises(ActionInputError, match="vector of 25"):
        OASIS.check_vector(torch.zeros(24))
    with pytest.raises(ActionInputError, match="NaN"):
        OASIS.check_vector([math.nan] * 25)
    with pytest.raises(ActionInputError, match="not numeric"):
        OASIS.check_vector(["w"] * 25)


def test_a_one_hot_space_picks_exactly_one_action_and_no_op_when_idle():
    assert CRAFTER.encode({}).tolist() == CRAFTER.zeros().tolist()
    assert CRAFTER.zeros()[0] == 1
    walk_and_hit = CRAFTER.encode({"keys": ["KeyW"], "buttons": [0]})
    assert walk_and_hit.sum() == 1 and walk_and_hit[CRAFTER.index("do")] == 1
    assert CRAFTER.encode({"keys": ["ArrowLeft"]})[CRAFTER.index("move_left")] == 1


def test_an_action_space_survives_its_json_form():
    for space in (OASIS, CRAFTER):
        assert ActionSpace.from_dict(space.to_dict()) == space


def test_a_malformed_action_space_declaration_is_a_value_error():
    with pytest.raises(ValueError, match="malformed"):
        ActionSpace.from_dict({"name": "x"})
    bad = OASIS.to_dict() | {"kind": "analog"}
    with pytest.raises(ValueError, match="kind"):
        ActionSpace.from_dict(bad)


def test_an_unknown_action_space_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="oasis-25"):
        get_action_space("doom")
