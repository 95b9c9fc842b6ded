"""The embedded Redis (no REDIS_URL): the test run that starts it stops it, and only that one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from webapp.embedded_redis import ensure_embedded_redis, stop_embedded_redis

REPO = Path(__file__).resolve().parents[2]
TINY_TEST = "tests/webapp/test_supervisor.py::test_exits_are_described_by_code_or_signal_name"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run_suite_on_embedded_redis(data_dir: Path, port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {"DATA_DIR": str(data_dir), "EMBEDDED_REDIS_PORT": str(port)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TINY_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_test_run_stops_the_embedded_redis_it_started(tmp_path):
    port = free_port()
    run_suite_on_embedded_redis(tmp_path, port)
    assert (tmp_path / "redis" / "redis.log").exists()  # it did start one
    assert not listening(port)


def test_a_test_run_leaves_an_embedded_redis_it_found_running(tmp_path):
    port = free_port()
    ensure_embedded_redis(tmp_path / "redis", port)  # as `make up` would have
    try:
        run_suite_on_embedded_redis(tmp_path, port)
        assert listening(port)
    finally:
        stop_embedded_redis(tmp_path / "redis", port)


def test_importing_the_settings_or_collecting_static_files_starts_no_redis(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {"DATA_DIR": str(tmp_path), "EMBEDDED_REDIS_PORT": str(port)}
    for command in (["check"], ["collectstatic", "--noinput"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert not listening(port), f"{command[0]} started the embedded Redis"
    assert not (tmp_path / "redis" / "redis.pid").exists()
