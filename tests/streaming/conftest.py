"""Fixtures for the streaming tests: a streaming loop on loopback and a placeholder device loop."""

from __future__ import annotations

import pytest

from inference.placeholder import PlaceholderRuntime
from streaming.peer import StreamingLoop
from webapp.worker.device_loop import DeviceLoop


@pytest.fixture
def streaming(settings):
    settings.WEBRTC_HOST_ADDRESSES = ["127.0.0.1"]
    loop = StreamingLoop()
    loop.start()
    yield loop
    loop.shutdown()


@pytest.fixture
def device():
    loop = DeviceLoop(PlaceholderRuntime(), frame_rate=20)
    loop.start()
    yield loop
    loop.shutdown()
