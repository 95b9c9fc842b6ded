"""Generated data-channel messages (hypothesis): the decoder never crashes, every refusal names
its reason and is counted once, and every well-formed message decodes to what the page sent."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_MOUSE_DELTA,
    MAX_WHEEL_DELTA,
    VERSION,
    InputFolder,
    InputMessage,
    PhotonMessage,
    PingMessage,
    ProtocolError,
    decode,
    encode_input,
)

REASONS = {"malformed", "oversized"}
MANY = settings(max_examples=3000, deadline=None)

numbers = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.integers(min_value=10**300, max_value=10**320)
    | st.sampled_from([10**309, -(10**400), 2**1024])  # written out, past any float: overflow
    | st.floats(allow_nan=True, allow_infinity=True)
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=25,
)
# Close to what a page sends, so the generator reaches every check past the envelope.
near_valid = st.fixed_dictionaries(
    {
        "v": st.sampled_from([VERSION, VERSION, VERSION + 1, str(VERSION), None, True]),
        "type": st.sampled_from(["input", "input", "ping", "photon", "ack", "", 7]),
    },
    optional={
        "seq": st.integers(min_value=-3, max_value=2**54) | json_values,
        "t": numbers | json_values,
        "keys": st.lists(st.text(max_size=40) | st.integers(), max_size=40) | json_values,
        "dx": numbers | json_values,
        "dy": numbers,
        "buttons": st.lists(st.integers(min_value=-2, max_value=7), max_size=8) | json_values,
        "wheel": numbers,
        "ms": numbers,
        "junk": json_values,
    },
)
raw_messages = (
    st.binary(max_size=2 * MAX_MESSAGE_BYTES)
    | st.text(max_size=2 * MAX_MESSAGE_BYTES)
    | json_values.map(json.dumps)
    | near_valid.map(json.dumps)
    | st.integers(min_value=1, max_value=600).map(lambda depth: "[" * depth + "]" * depth)
)


def decoded_or_reason(data):
    try:
        return decode(data), None
    except ProtocolError as exc:
        return None, exc


@MANY
@given(raw_messages)
def test_any_message_decodes_or_is_refused_with_a_reason(data):
    message, refusal = decoded_or_reason(data)
    if refusal is not None:
        assert refusal.kind in REASONS and str(refusal)
        return
    assert isinstance(message, InputMessage | PingMessage | PhotonMessage)
    if isinstance(message, InputMessage):
        assert all(isinstance(key, str) and key for key in message.keys)
        assert message.buttons <= set(range(5))
        assert abs(message.dx) <= MAX_MOUSE_DELTA and abs(message.dy) <= MAX_MOUSE_DELTA
        assert abs(message.wheel) <= MAX_WHEEL_DELTA
        assert all(math.isfinite(v) for v in (message.t, message.dx, message.dy, message.wheel))


@MANY
@given(st.lists(raw_messages, max_size=20))
def test_the_folder_counts_every_refusal_once_and_never_raises(messages):
    folder = InputFolder()
    dropped = sum(folder.receive(data) is None for data in messages)
    assert sum(folder.dropped.values()) == dropped
    assert set(folder.dropped) <= REASONS | {"stale"}
    held = folder.take()
    assert held.buttons <= set(range(5))
    assert abs(held.dx) <= MAX_MOUSE_DELTA * len(messages)


keys = st.text(
    alphabet=st.characters(codec="ascii", categories=["Lu", "Ll", "Nd"]), min_size=1, max_size=12
)


@MANY
@given(
    seq=st.integers(min_value=0, max_value=2**53 - 1),
    t=st.floats(min_value=0, max_value=1e13),
    keys=st.frozensets(keys, max_size=8),
    dx=st.floats(min_value=-1e6, max_value=1e6),
    dy=st.floats(min_value=-1e6, max_value=1e6),
    buttons=st.frozensets(st.integers(min_value=0, max_value=4)),
    wheel=st.floats(min_value=-1e3, max_value=1e3),
)
def test_what_the_page_sends_arrives_as_sent_within_the_clamps(
    seq, t, keys, dx, dy, buttons, wheel
):
    message = decode(encode_input(seq, t, keys, dx, dy, buttons, wheel))
    assert message == InputMessage(
        seq=seq,
        t=t,
        keys=keys,
        dx=max(-MAX_MOUSE_DELTA, min(MAX_MOUSE_DELTA, dx)),
        dy=max(-MAX_MOUSE_DELTA, min(MAX_MOUSE_DELTA, dy)),
        buttons=buttons,
        wheel=max(-MAX_WHEEL_DELTA, min(MAX_WHEEL_DELTA, wheel)),
    )
