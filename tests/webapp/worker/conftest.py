"""Shared fixtures for the session-runner tests: a real worker process and a runner thread."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import close_old_connections

from webapp.play.models import PlaySession
from webapp.worker import runner
from webapp.worker.process import WorkerProcess

logger = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def no_shutdown_signal(monkeypatch):
    """A worker that decides to shut down signals its own process, which here is pytest.

    Seen once in CI: a runner test's heartbeat thread took that path and SIGTERM ended the
    whole suite. Tests get the list of signals instead (test_process.py checks it where the
    shutdown is the point); an unexpected one is logged, not sent.
    """
    signals: list[str] = []

    def record() -> None:
        logger.warning("worker asked to shut its process down (SIGTERM not sent in tests)")
        signals.append("SIGTERM")

    monkeypatch.setattr("webapp.worker.process._signal_celery_shutdown", record)
    return signals


@pytest.fixture
def process(pool, settings):
    """A started worker process (placeholder runtime, 2 slots, loopback-only ICE)."""
    settings.WEBRTC_HOST_ADDRESSES = ["127.0.0.1"]
    process = WorkerProcess(pool, 2, "inference.placeholder.PlaceholderRuntime")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def run_in_thread():
    """Start `runner.run` for a session in a thread; returns (thread, result dict)."""
    threads = []

    def start(session, process):
        result = {}

        def target():
            try:
                result["reason"] = runner.run(str(session.public_id), process)
            finally:
                close_old_connections()

        thread = threading.Thread(target=target)
        thread.start()
        threads.append(thread)
        return thread, result

    yield start
    for thread in threads:
        thread.join(timeout=10)


def wait_until_running(session, thread, timeout: float = 10.0) -> None:
    """Poll until the runner has claimed the session; fails if it never does."""
    for _ in range(int(timeout / 0.05)):
        session.refresh_from_db()
        if session.state == PlaySession.State.RUNNING:
            return
        thread.join(0.05)
    raise AssertionError(f"session never ran (state {session.state})")
