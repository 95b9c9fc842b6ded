"""deploy/gunicorn.conf.py, read by gunicorn's own Config and handed to a uvicorn worker."""

from __future__ import annotations

import asyncio
import runpy

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn_worker import UvicornWorker

from tests.deploy.helpers import DEPLOY, env_example

SETTINGS = ("bind", "workers", "worker_class", "timeout", "graceful_timeout", "forwarded_allow_ips")


def uvicorn_config(monkeypatch, **env):
    """The uvicorn Config a gunicorn worker builds from deploy/gunicorn.conf.py under env."""
    for name in ("TRUSTED_PROXIES", "BIND", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    module = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    cfg = Config()
    for name in SETTINGS:
        cfg.set(name, module[name])  # gunicorn's validators run here
    worker = UvicornWorker(
        age=0, ppid=0, sockets=[], app=None, timeout=30, cfg=cfg, log=Logger(cfg)
    )
    return cfg, worker.config


def client_seen(config, peer: str, forwarded_for: str) -> str:
    """The client address the app sees for a request from peer carrying X-Forwarded-For."""
    seen = {}

    async def app(scope, receive, send):
        seen["client"] = scope["client"][0]

    # What uvicorn's Config.load wraps the app in when proxy_headers is on (the default).
    assert config.proxy_headers
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=config.forwarded_allow_ips)
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
    }
    asyncio.run(middleware(scope, None, None))
    return seen["client"]


def test_it_believes_the_trusted_proxies_only(monkeypatch):
    cfg, config = uvicorn_config(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.7")
    assert cfg.forwarded_allow_ips == ["10.0.0.0/8", "192.0.2.7"]
    assert client_seen(config, "10.1.2.3", "203.0.113.9") == "203.0.113.9"
    assert client_seen(config, "192.0.2.7", "203.0.113.9") == "203.0.113.9"
    assert client_seen(config, "198.51.100.1", "203.0.113.9") == "198.51.100.1"


def test_empty_trusts_no_proxy_not_even_loopback(monkeypatch):
    cfg, config = uvicorn_config(monkeypatch, TRUSTED_PROXIES="")
    assert cfg.forwarded_allow_ips == []
    assert client_seen(config, "127.0.0.1", "203.0.113.9") == "127.0.0.1"


def test_a_bad_entry_stops_the_start(monkeypatch):
    with pytest.raises(ValueError, match="host bits set"):
        uvicorn_config(monkeypatch, TRUSTED_PROXIES="10.0.0.1/8")


def test_empty_bind_and_unset_concurrency_take_the_defaults(monkeypatch):
    cfg, _ = uvicorn_config(monkeypatch, BIND="")
    assert cfg.bind == ["0.0.0.0:8000"]
    assert cfg.workers == 4
    assert cfg.worker_class_str == "uvicorn_worker.UvicornWorker"
    assert cfg.timeout == 0  # websockets outlive any request timeout


def test_the_example_env_never_leaves_web_concurrency_empty(monkeypatch):
    # uvicorn's Config (and gunicorn's default) int() it themselves: "" would stop the start.
    concurrency = env_example()["WEB_CONCURRENCY"]
    cfg, config = uvicorn_config(monkeypatch, WEB_CONCURRENCY=concurrency)
    assert cfg.workers == config.workers == int(concurrency)
