"""A GPU worker's /healthz, /readyz and /metrics over real HTTP, after a real streamed session."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.protocol import encode_input
from tests.conftest import confirmed_session
from tests.streaming.client import ClientPeer
from tests.webapp.worker.conftest import wait_until_running
from webapp.play.models import PlaySession
from webapp.play.services import record_connection
from webapp.worker.process import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(port: int) -> dict[tuple[str, tuple], float]:
    status, body = get(port, "/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def observed(pool, settings):
    settings.WEBRTC_HOST_ADDRESSES = ["127.0.0.1"]
    settings.WORKER_METRICS_ADDRESS = "127.0.0.1"
    process = WorkerProcess(
        pool, 2, "inference.placeholder.PlaceholderRuntime", metrics_port=free_port()
    )
    process.start()
    yield process
    process.stop()


def test_a_worker_reports_its_frames_slots_and_the_players_key_to_photon(
    observed, world, owner, run_in_thread
):
    port = observed.metrics_port
    assert get(port, "/healthz") == (200, b'{"status": "ok"}')
    assert get(port, "/readyz") == (200, b'{"status": "ready"}')
    session = confirmed_session(world, owner, worker=observed.worker)
    record_connection(session, True)
    thread, _ = run_in_thread(session, observed)
    wait_until_running(session, thread)

    async def play():
        client = ClientPeer()
        await client.connect(str(session.public_id))
        client.channel.send(encode_input(1, 1.0, keys=["KeyD"]))
        client.channel.send(json.dumps({"v": 1, "type": "photon", "ms": 66.5}))
        client.channel.send(json.dumps({"v": 1, "type": "photon", "ms": -3}))  # dropped
        for _ in range(100):
            if len(client.frames) >= 20:
                break
            await asyncio.sleep(0.05)
        return client

    client = observed.streaming.call(play(), timeout=30)
    seen = samples(port)
    ids = (("pool", "test"), ("worker", str(observed.worker.public_id)))
    assert seen[("reverie_frames_total", ids)] >= len(client.frames) >= 20
    generation = (("pool", "test"), ("stage", "generation"))
    assert seen[("reverie_frame_seconds_count", generation)] >= 20
    assert seen[("reverie_frame_seconds_count", (("pool", "test"), ("stage", "encode")))] >= 19
    assert seen[("reverie_key_to_photon_seconds_count", (("pool", "test"),))] == 1
    assert seen[("reverie_key_to_photon_seconds_sum", (("pool", "test"),))] == pytest.approx(0.0665)
    for state, count in (("playing", 1), ("free", 1), ("reserved", 0)):
        assert seen[("reverie_slots", tuple(sorted((*ids, ("state", state)))))] == count
    assert seen[("reverie_worker_draining", ids)] == 0

    observed.drain(60, exits=False)
    assert get(port, "/readyz") == (503, b'{"status": "draining"}')
    assert samples(port)[("reverie_worker_draining", ids)] == 1
    PlaySession.objects.filter(pk=session.pk).update(deadline=session.created_at)  # time up
    thread.join(10)
    observed.streaming.call(client.close(), timeout=10)


def test_metrics_on_a_worker_need_the_token_when_one_is_set(observed, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert get(observed.metrics_port, "/metrics")[0] == 401
    request = urllib.request.Request(
        f"http://127.0.0.1:{observed.metrics_port}/metrics",
        headers={"Authorization": "Bearer scrape-me"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200 and b"reverie_frames_total" in reply.read()
    assert get(observed.metrics_port, "/healthz")[0] == 200
