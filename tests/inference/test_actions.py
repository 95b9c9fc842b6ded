"""Browser input to action vectors: layouts, camera quantisation, the hotbar and key repeat."""

from __future__ import annotations

import math

import pytest
import torch

from inference.actions import (
    ActionEncoder,
    ActionInputError,
    ActionSpace,
    BrowserInput,
    InputState,
    get_action_space,
)

OASIS = get_action_space("oasis-25")
CRAFTER = get_action_space("crafter-17")


def held(keys=(), dx=0.0, dy=0.0, buttons=(), wheel=0.0) -> BrowserInput:
    """One frame of (already validated) input."""
    return BrowserInput(frozenset(keys), dx, dy, frozenset(buttons), wheel)


def test_the_oasis_layout_has_25_entries_in_the_reference_order():
    names = [f.name for f in OASIS.fields]
    assert len(names) == 25
    assert names[:3] == ["inventory", "ESC", "hotbar.1"]
    assert names[10:17] == ["hotbar.9", "forward", "back", "left", "right", "cameraX", "cameraY"]
    assert names[17:] == [
        "jump",
        "sneak",
        "sprint",
        "swapHands",
        "attack",
        "use",
        "pickItem",
        "drop",
    ]


def test_held_keys_and_mouse_buttons_set_their_buttons():
    vec = OASIS.encode(held(["KeyW", "Space", "ShiftLeft"], buttons=[0, 2]))
    on = {OASIS.fields[i].name for i in vec.nonzero().flatten().tolist()}
    assert on == {"forward", "jump", "sneak", "attack", "use"}


def test_unknown_key_codes_are_ignored():
    assert torch.equal(OASIS.encode(held(["F13", "KeyZ"])), OASIS.zeros())


def test_mouse_motion_is_quantised_to_half_degree_bins_of_the_camera():
    vec = OASIS.encode(held(dx=10.0, dy=-4.0))  # 1.5 and -0.6 degrees at 0.15/px
    assert vec[OASIS.index("cameraY")].item() == pytest.approx(3 / 40)  # yaw from dx
    assert vec[OASIS.index("cameraX")].item() == pytest.approx(-1 / 40)  # pitch from dy
    assert (vec[[15, 16]] * 40).round().sub(vec[[15, 16]] * 40).abs().max() < 1e-6


def test_huge_mouse_motion_is_clamped_to_twenty_degrees():
    vec = OASIS.encode(held(dx=1e9, dy=-1e9))
    assert vec[16].item() == 1.0 and vec[15].item() == -1.0


def test_the_wheel_steps_through_the_hotbar_and_remembers_the_slot():
    state = InputState()
    first = OASIS.encode(held(wheel=120), state)
    assert first[OASIS.index("hotbar.2")] == 1 and state.hotbar == 1
    OASIS.encode(held(["Digit9"]), state)
    wrapped = OASIS.encode(held(wheel=3), state)
    assert wrapped[OASIS.index("hotbar.1")] == 1 and state.hotbar == 0
    back = OASIS.encode(held(wheel=-1), state)
    assert back[OASIS.index("hotbar.9")] == 1


def test_the_input_error_is_a_value_error():
    assert issubclass(ActionInputError, ValueError)


def test_an_empty_message_is_no_input():
    assert torch.equal(OASIS.encode(held()), OASIS.zeros())


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
    assert CRAFTER.encode(held()).tolist() == CRAFTER.zeros().tolist()
    assert CRAFTER.zeros()[0] == 1
    walk_and_hit = CRAFTER.encode(held(["KeyW"], buttons=[0]))
    assert walk_and_hit.sum() == 1 and walk_and_hit[CRAFTER.index("do")] == 1
    assert CRAFTER.encode(held(["ArrowLeft"]))[CRAFTER.index("move_left")] == 1


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


def test_a_sessions_encoder_fires_a_held_key_at_the_play_cadence_of_a_one_hot_model():
    encoder = ActionEncoder(CRAFTER, key_repeat=4)
    frames = [held(["KeyW"])] * 9 + [held()] + [held(["Space"])]
    seen = [int(encoder.encode(f).argmax()) for f in frames]
    up, do = CRAFTER.index("move_up"), CRAFTER.index("do")
    assert seen == [up, 0, 0, 0, up, 0, 0, 0, up, 0, do]
    assert encoder.encode(held()).dtype == "float32"


def test_an_encoder_without_key_repeat_passes_every_held_frame_and_keeps_the_hotbar():
    encoder = ActionEncoder(OASIS)
    for _ in range(3):
        assert encoder.encode(held(["KeyW"]))[OASIS.index("forward")] == 1.0
    encoder.encode(held(wheel=1))
    assert encoder.state.hotbar == 1
    with pytest.raises(ValueError, match="one_hot"):
        ActionEncoder(OASIS, key_repeat=4)


def test_bindings_list_keys_mouse_buttons_and_camera_axes_in_vector_order():
    rows = OASIS.bindings()
    assert rows[0] == {"action": "inventory", "codes": ["KeyE"]}
    assert {"action": "attack", "codes": ["Mouse0"]} in rows
    assert {"action": "cameraY", "codes": ["MouseMoveX"]} in rows
    assert "noop" not in {row["action"] for row in CRAFTER.bindings()}  # bound to nothing
