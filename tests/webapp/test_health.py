"""/healthz and /readyz against the real database and Redis, and with Redis unreachable."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import make_worker

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_healthz_answers_even_for_a_host_name_django_would_refuse(client):
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_database_and_redis_and_lists_live_workers(client, pool):
    make_worker(pool)
    make_worker(pool, ready=False)  # still warming: not live
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": {"ok": True}, "redis": {"ok": True}}
    assert body["pools"]["test"] == {"live_workers": 1, "accepting_players": True}


def test_readyz_is_503_and_names_redis_when_redis_is_down(client, pool, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert body["pools"]["test"]["live_workers"] == 0
