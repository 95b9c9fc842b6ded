"""The data-channel protocol: decoding, validation, and folding input into frames."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from inference.actions import ActionEncoder, get_action_space
from inference.placeholder import PlaceholderRuntime
from streaming.protocol import (
    MAX_MESSAGE_BYTES,
    InputFolder,
    InputMessage,
    PhotonMessage,
    PingMessage,
    ProtocolError,
    decode,
    encode_ack,
    encode_input,
)


def message(**fields) -> str:
    return json.dumps({"v": 1, "type": "input", "seq": 1, "t": 5.0, **fields})


def test_an_input_message_round_trips_through_encode_and_decode():
    decoded = decode(
        encode_input(7, 12.5, keys=["KeyW", "Space"], dx=3, dy=-2, buttons=[0], wheel=-1)
    )
    assert decoded == InputMessage(
        seq=7,
        t=12.5,
        keys=frozenset({"KeyW", "Space"}),
        dx=3.0,
        dy=-2.0,
        buttons=frozenset({0}),
        wheel=-1.0,
    )


def test_a_ping_decodes_and_an_ack_names_seq_frame_and_pts():
    assert decode('{"v": 1, "type": "ping", "t": 3}') == PingMessage(t=3.0)
    assert json.loads(encode_ack(4, 90, 4500)) == {
        "v": 1,
        "type": "ack",
        "seq": 4,
        "frame": 90,
        "pts": 4500,
    }
    hops = {"changed": 3, "recv": 1.5, "take": 2.0, "step": 3.0, "push": 4, "encode": 5, "sent": 6}
    assert json.loads(encode_ack(4, 90, 4500, hops))["hops"] == hops


@pytest.mark.parametrize(
    "data, reason",
    [
        ("{", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"v": 2, "type": "input", "seq": 1}), "version"),
        (json.dumps({"v": 1, "type": "teleport"}), "unknown message type"),
        (message(seq=-1), "seq"),
        (message(seq=True), "seq"),
        (message(keys="KeyW"), "keys must be a list"),
        (message(keys=[7]), "KeyboardEvent.code"),
        (message(keys=["K" * 40]), "KeyboardEvent.code"),
        (message(keys=[f"Key{i}" for i in range(40)]), "at most"),
        (message(buttons=[9]), "buttons"),
        (message(dx=float("nan")), "finite"),
        (message(dx="3"), "finite"),
        (message(dx=float("inf")), "finite"),
        (message(dy=True), "finite"),
        (message(wheel=None), "finite"),
        (message(buttons=[0.5]), "buttons"),
        (message(extra=1), "unknown field"),
        (json.dumps({"v": 1, "type": "photon", "ms": -1}), "within"),
        (json.dumps({"v": 1, "type": "photon", "ms": 1e9}), "within"),
        (json.dumps({"v": 1, "type": "photon", "ms": "66"}), "finite"),
        (json.dumps({"v": 1, "type": "photon", "ms": 5, "seq": 1}), "unknown field"),
    ],
)
def test_malformed_messages_are_rejected_with_the_reason(data, reason):
    with pytest.raises(ProtocolError, match=reason) as caught:
        decode(data)
    assert caught.value.kind == "malformed"


def test_a_photon_report_decodes_to_the_pages_key_to_photon_time():
    assert decode(json.dumps({"v": 1, "type": "photon", "ms": 66.5})) == PhotonMessage(ms=66.5)


def test_an_oversized_message_is_rejected_before_parsing():
    with pytest.raises(ProtocolError) as caught:
        decode("x" * (MAX_MESSAGE_BYTES + 1))
    assert caught.value.kind == "oversized"


def test_huge_mouse_and_wheel_deltas_are_clamped():
    decoded = decode(message(dx=1e9, dy=-1e9, wheel=1e6))
    assert decoded.dx == 2000.0 and decoded.dy == -2000.0 and decoded.wheel == 50.0


def test_a_frame_sees_the_latest_held_keys_and_the_sum_of_movement_since_the_last_frame():
    folder = InputFolder()
    folder.receive(message(seq=1, keys=["KeyW"], dx=2, wheel=1))
    folder.take()
    # W, already seen by a frame, is let go for D: the next frame holds D alone.
    folder.receive(message(seq=2, keys=["KeyW"]))
    folder.receive(message(seq=3, keys=["KeyD"], dx=3, dy=-1, buttons=[0]))
    folded = folder.take()
    assert folded.keys == frozenset({"KeyD"}) and folded.buttons == frozenset({0})
    assert (folded.dx, folded.dy, folded.wheel, folded.seq) == (3.0, -1.0, 0.0, 3)
    again = folder.take()
    # Held state persists into the next frame; deltas were spent and no new message came.
    assert again.keys == frozenset({"KeyD"})
    assert (again.dx, again.dy, again.wheel, again.seq) == (0.0, 0.0, 0.0, None)


def test_a_tap_released_before_the_next_frame_still_reaches_it_once():
    folder = InputFolder()
    folder.receive(message(seq=1, keys=["KeyD"]))
    folder.receive(message(seq=2, keys=[]))  # down and up again, both between two frames
    folder.receive(message(seq=3, buttons=[0]))
    folder.receive(message(seq=4, buttons=[]))
    tapped = folder.take()
    assert tapped.keys == frozenset({"KeyD"}) and tapped.buttons == frozenset({0})
    after = folder.take()
    assert after.keys == frozenset() and after.buttons == frozenset()


def test_the_first_change_since_the_last_frame_is_named_with_its_arrival_and_announced():
    changes = []
    folder = InputFolder(on_change=lambda: changes.append(True))
    folder.receive(message(seq=1, dx=4))  # movement alone changes nothing held
    assert folder.take().changed_seq is None and changes == []
    before = time.time()
    folder.receive(message(seq=2, keys=["KeyW"]))
    folder.receive(message(seq=3, keys=["KeyW"]))  # a refresh of the same state
    folder.receive(message(seq=4, keys=["KeyW", "KeyD"]))
    folded = folder.take()
    assert folded.seq == 4 and folded.changed_seq == 2
    assert before <= folded.changed_at <= time.time()
    assert len(changes) == 2  # seq 2 and seq 4; the refresh is not a change
    assert folder.take().changed_seq is None


def test_out_of_order_messages_are_dropped_whole_and_counted():
    folder = InputFolder()
    folder.receive(message(seq=5, keys=["KeyW"]))
    assert folder.receive(message(seq=4, keys=["KeyS"], dx=100)) is None
    assert folder.receive(message(seq=5, keys=["KeyS"])) is None
    folded = folder.take()
    assert folded.keys == frozenset({"KeyW"}) and folded.dx == 0.0
    assert folder.dropped == {"stale": 2}


def test_bad_messages_are_counted_by_kind_and_never_raise():
    folder = InputFolder()
    for data in ("nope", b"\xff\xfe", "y" * 2000, message(seq="one")):
        assert folder.receive(data) is None
    assert folder.dropped == {"malformed": 3, "oversized": 1}


def test_only_messages_that_do_something_count_as_activity():
    folder = InputFolder()
    folder.receive(message(seq=1))
    assert folder.last_activity is None
    folder.receive(message(seq=2, dx=1))
    assert folder.last_activity is not None


def test_releasing_lets_go_of_held_keys_and_buttons():
    folder = InputFolder()
    folder.receive(message(seq=1, keys=["KeyW"], buttons=[2]))
    folder.release()
    folded = folder.take()
    assert folded.keys == frozenset() and folded.buttons == frozenset()


def test_a_restarted_folder_takes_a_new_page_counting_from_seq_1():
    folder = InputFolder()
    folder.receive(message(seq=900, keys=["KeyW"], dx=7))
    folder.take()
    folder.receive(message(seq=901, dx=5))
    folder.restart()  # a reload: the new page's seq starts again at 1
    fresh = folder.take()
    assert (fresh.keys, fresh.dx, fresh.seq) == (frozenset(), 0.0, None)
    assert folder.receive(message(seq=1, keys=["KeyD"])) is not None
    folded = folder.take()
    assert folded.keys == frozenset({"KeyD"}) and folded.seq == 1
    assert "stale" not in folder.dropped


def test_the_placeholders_action_space_maps_held_keys_and_mouse_buttons_to_its_vector():
    space = PlaceholderRuntime.action_space
    encoder = ActionEncoder(space, PlaceholderRuntime.key_repeat)
    folder = InputFolder()
    folder.receive(message(seq=1, keys=["KeyD", "KeyW", "KeyZ"], buttons=[0]))
    vector = encoder.encode(folder.take())
    np.testing.assert_array_equal(vector, [1, 0, 0, 1, 1])  # forward, back, left, right, attack
    assert space.bindings()[0] == {"action": "forward", "codes": ["KeyW", "ArrowUp"]}


def test_folded_input_encodes_through_a_models_action_space_and_keeps_the_hotbar():
    space = get_action_space("oasis-25")
    encoder = ActionEncoder(space)
    folder = InputFolder()
    folder.receive(message(seq=1, keys=["KeyW"], dx=40, wheel=1))
    vector = encoder.encode(folder.take())
    assert vector[space.index("forward")] == 1.0
    assert vector[space.index("cameraY")] > 0  # mouse right turns right
    assert vector[space.index("hotbar.2")] == 1.0  # the wheel stepped from slot 1 to 2
    assert {"action": "cameraY", "codes": ["MouseMoveX"]} in space.bindings()
