"""Generated websocket messages (hypothesis) against both consumers, through the real ASGI stack
and Redis channel layer: nothing crashes a socket, each bad message gets one error reply that
names its reason and is counted, good ones get their usual reply, and the socket stays open.

"leave" is left out of the generated types: it ends the ticket or session (tested elsewhere).
"""

import json

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import confirmed_session
from tests.webapp.test_consumers import communicator
from webapp.play.consumers import MAX_PLAY_MESSAGE_BYTES
from webapp.queue import services
from webapp.wsutil import MAX_MESSAGE_BYTES, REJECT_REASONS

pytestmark = pytest.mark.django_db(transaction=True)
# What the generator found once, kept as fixed cases: nesting deeper than json's recursion
# limit, a non-string type (unhashable), an empty frame of each kind.
FOUND = [("text", "[" * 1500 + "]" * 1500), ("text", '{"type": []}'), ("text", ""), ("bytes", b"")]
# 80 sockets of 1 to 40 generated messages each per consumer; the protocol decoder gets its
# many thousands in tests/streaming/test_protocol_properties.py.
SOCKETS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def messages(types: list[str], limit: int, fields: dict) -> st.SearchStrategy:
    """("bytes", b) or ("text", s): noise, JSON of any shape, typed objects, nesting, oversize."""
    typed = st.fixed_dictionaries(
        {"type": st.sampled_from([*types, "steal", "", "LEAVE"]) | json_values}, optional=fields
    )
    text = (
        st.text(max_size=200)
        | json_values.map(json.dumps)
        | typed.map(json.dumps)
        | st.integers(min_value=1200, max_value=2000).map(lambda n: "[" * n + "]" * n)
        | st.integers(min_value=limit + 1, max_value=limit + 64).map(lambda n: "x" * n)
    )
    return st.tuples(st.just("bytes"), st.binary(max_size=64)) | st.tuples(st.just("text"), text)


def envelope_reason(kind, data, limit, allowed):
    """Why the shared envelope check refuses a message (webapp/wsutil.py), None if it passes."""
    if kind == "bytes":
        return "not_text"
    if len(data) > limit:
        return "too_large"
    if data.startswith("[" * 500):
        # Whether json recurses out first depends on the stack (hypothesis raises the limit
        # while it runs): either refusal is right, a crash is not.
        return ("not_json", "bad_type")
    try:
        content = json.loads(data)
    except ValueError:
        return "not_json"
    kind = content.get("type") if isinstance(content, dict) else None
    if not isinstance(kind, str) or kind not in allowed:
        return "bad_type"
    return None


def offer_reason(content):
    """Why the play consumer refuses an offer that passed the envelope, None if it takes it."""
    sdp, offer_id = content.get("sdp"), content.get("offer_id")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        return "bad_field"
    ok_id = offer_id is None or (
        not isinstance(offer_id, bool) and isinstance(offer_id, int) and 0 <= offer_id < 2**53
    )
    return None if ok_id else "bad_field"


async def exchange(path, user, sent):
    """Send every message, then read every reply until the socket goes quiet."""
    comm = await communicator(path, user)
    connected, _ = await comm.connect()
    assert connected
    replies = []
    try:
        await comm.receive_json_from(timeout=5)  # the status sent on connect
        for kind, data in sent:
            # As the server hands frames over (an empty one included, which send_to refuses).
            await comm.send_input({"type": "websocket.receive", kind: data})
        while not await comm.receive_nothing(timeout=0.3):
            output = await comm.receive_output()
            assert output["type"] == "websocket.send", f"the socket closed: {output}"
            replies.append(json.loads(output["text"]))
    finally:
        await comm.disconnect()
    return replies


def assert_each_refusal_answered(replies, reasons):
    refusals = [reply for reply in replies if "reason" in reply]
    assert len(refusals) == len(reasons)
    for reply, reason in zip(refusals, reasons, strict=True):
        assert reply["reason"] in (reason if isinstance(reason, tuple) else (reason,))
        assert reply["reason"] in REJECT_REASONS
    assert [reply["rejected"] for reply in refusals] == list(range(1, len(reasons) + 1))
    assert all(reply["error"] for reply in refusals)


@pytest.fixture
def queued(world, owner):
    return services.join(owner, world)


@SOCKETS
@given(
    sent=st.lists(
        messages(["heartbeat"], MAX_MESSAGE_BYTES, {"junk": json_values}), min_size=1, max_size=40
    )
)
@example(sent=FOUND)
def test_the_queue_socket_answers_any_message_and_stays_open(queued, owner, sent):
    sent = [m for m in sent if m[0] == "bytes" or "leave" not in m[1]] or [("text", "{}")]
    expected = [envelope_reason(k, d, MAX_MESSAGE_BYTES, {"heartbeat"}) for k, d in sent]
    replies = async_to_sync(exchange)(f"/ws/queue/{queued.public_id}/", owner, sent)
    assert_each_refusal_answered(replies, [reason for reason in expected if reason])
    # Heartbeats are answered with a status at most once a second; never with an error.
    assert all(reply["type"] in ("status", "error") for reply in replies)


@pytest.fixture
def starting_session(world, owner):
    return confirmed_session(world, owner)


offer_fields = {
    "sdp": st.sampled_from(["v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "", "v=1"]) | json_values,
    "offer_id": st.integers(min_value=-2, max_value=2**54) | json_values,
}


@SOCKETS
@given(
    sent=st.lists(
        messages(["offer"], MAX_PLAY_MESSAGE_BYTES, offer_fields), min_size=1, max_size=40
    )
)
@example(sent=FOUND)
def test_the_play_socket_answers_any_message_and_stays_open(starting_session, owner, sent):
    sent = [m for m in sent if m[0] == "bytes" or "leave" not in m[1]] or [("text", "{}")]
    expected, offers = [], 0
    for kind, data in sent:
        reason = envelope_reason(kind, data, MAX_PLAY_MESSAGE_BYTES, {"offer"})
        if reason is None:
            reason = offer_reason(json.loads(data))
            offers += reason is None
        if reason:
            expected.append(reason)
    replies = async_to_sync(exchange)(f"/ws/play/{starting_session.public_id}/", owner, sent)
    assert_each_refusal_answered(replies, expected)
    # The session is still starting, so each good offer is told to wait for "running".
    waits = [r for r in replies if r["type"] == "signal" and r.get("kind") == "not_ready"]
    assert len(waits) == offers
