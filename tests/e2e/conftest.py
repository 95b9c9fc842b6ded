"""A real service for browser tests: uvicorn and a GPU worker as subprocesses, real Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.e2e.players import CHROMIUM, CHROMIUM_FLAGS

# Playwright's sync API runs an event loop in this thread between calls; the ORM calls the
# tests make in between are ordinary blocking calls, which is what this flag allows.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, password = db["USER"] or "postgres", db["PASSWORD"] or ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{db['NAME']}"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


class Service:
    """The web server and GPU workers of one test, all on loopback."""

    def __init__(self, pool_slug: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WORKER_HEARTBEAT_SECONDS": "1",
            # SIGTERM drains a worker this long before its sessions end (production: 300 s).
            "WORKER_DRAIN_SECONDS": "3",
            # Loopback-only ICE: no test packet leaves 127.0.0.0/8.
            "WEBRTC_HOST_ADDRESSES": "127.0.0.1",
        }
        self.pool_slug = pool_slug
        self.processes: list[subprocess.Popen] = []
        self.logs = Path(tempfile.mkdtemp(prefix="reverie-e2e-"))

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        process = subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start_web(self):
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "webapp.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
            ],
        )
        wait_for(self._web_up, 30, "the web server")

    def start_worker(self, slots: int = 1) -> subprocess.Popen:
        from webapp.fleet.models import Worker

        before = Worker.objects.count()
        name = f"worker{len(self.processes)}"
        process = self.spawn(
            name,
            [
                sys.executable,
                "manage.py",
                "rungpuworker",
                "--pool",
                self.pool_slug,
                "--slots",
                str(slots),
            ],
        )
        wait_for(
            lambda: (
                Worker.objects.filter(state=Worker.State.READY).count() > before
                or process.poll() is not None
            ),
            60,
            "the GPU worker",
        )
        assert process.poll() is None, self.log(name)[-2000:]
        return process

    def _web_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        connection.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def service(transactional_db, pool):
    svc = Service(pool.slug)
    svc.start_web()
    yield svc
    svc.stop()


@pytest.fixture
def browser_context(browsers):
    return browsers()


@pytest.fixture
def browsers():
    """Call it for each separate browser (own profile, cookies and process) a test needs."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs it")
    profiles, contexts = [], []
    with sync_playwright() as playwright:

        def launch():
            profiles.append(tempfile.mkdtemp(prefix="reverie-chromium-"))
            contexts.append(
                playwright.chromium.launch_persistent_context(
                    profiles[-1], executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
                )
            )
            return contexts[-1]

        yield launch
        for context in contexts:
            context.close()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


def off_loop(function, *args, **kwargs):
    """Run Django code outside Playwright's event loop: channel-layer sends need a thread
    without a running loop, and the ORM connection is opened and closed there, not leaked into
    Playwright's context."""
    from concurrent.futures import ThreadPoolExecutor

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(call).result(timeout=60)
