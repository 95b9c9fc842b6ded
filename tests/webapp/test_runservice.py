"""`manage.py runservice` (the README's `make up`) under a real fault: its GPU worker SIGKILLed.

The whole service runs as in `make up` (uvicorn, Celery control worker and beat, a GPU worker
serving the shipped model, so a restart has to load and warm it) against the test database and
Redis; only the GPU worker dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from inference import SHIPPED_CHECKPOINT
from tests.conftest import confirmed_session
from tests.e2e.conftest import free_port, wait_for
from tests.e2e.conftest import test_database_url as database_url
from webapp.fleet.models import Worker
from webapp.play.models import PlaySession

REPO = Path(settings.BASE_DIR)
TOLD_WITHIN = 15  # the bound: players of a dead worker are told within this
PLAY_AGAIN_WITHIN = 60  # and a restarted worker takes players within this of the kill


def child_pids(pid: int) -> set[int]:
    """Direct children of pid (the supervised processes of runservice)."""
    pids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids |= {int(p) for p in (task / "children").read_text().split()}
    return pids


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture
def runservice(transactional_db, pool, tmp_path):
    pool.checkpoint = str(SHIPPED_CHECKPOINT)
    pool.save()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WEBRTC_HOST_ADDRESSES": "127.0.0.1",
        "DATA_DIR": str(tmp_path),  # beat's schedule file
    }
    log = open(tmp_path / "runservice.log", "wb")  # noqa: SIM115 (closed below)
    command = [sys.executable, "manage.py", "runservice", "--port", str(port), "--pool", pool.slug]
    process = subprocess.Popen(
        [*command, "--restart-delay", "0.5"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        yield process, f"http://127.0.0.1:{port}/", tmp_path / "runservice.log"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


@pytest.mark.slow
def test_a_killed_gpu_worker_is_restarted_and_its_players_are_told(runservice, world, owner):
    process, url, log = runservice
    wait_for(lambda: Worker.objects.filter(state=Worker.State.READY).exists(), 90, "a worker")
    worker = Worker.objects.get(state=Worker.State.READY)
    session = confirmed_session(world, owner, worker)
    assert web_answers(url)

    killed_at = time.monotonic()
    os.kill(worker.pid, signal.SIGKILL)

    def told() -> bool:
        session.refresh_from_db()
        return session.end_reason == PlaySession.EndReason.WORKER_LOST

    wait_for(told, TOLD_WITHIN, "the player to be told the worker was lost")
    told_after = time.monotonic() - killed_at
    assert web_answers(url)  # the web server never went down with the worker
    wait_for(
        lambda: Worker.objects.filter(state=Worker.State.READY).exclude(pk=worker.pk).exists(),
        PLAY_AGAIN_WITHIN - (time.monotonic() - killed_at),
        "the restarted worker",
    )
    back_after = time.monotonic() - killed_at
    text = log.read_text(errors="replace")
    assert f"gpu0 (pid {worker.pid}) exited with signal SIGKILL" in text, text[-3000:]
    print(f"told after {told_after:.1f} s, a worker ready again after {back_after:.1f} s")

    # Ctrl-C stops the service and every child it ran.
    children = child_pids(process.pid)
    assert len(children) == 4  # web, control, beat, the new gpu0
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    assert not [pid for pid in children if alive(pid)]
    assert "stopped." in log.read_text(errors="replace")


def test_runservice_refuses_a_restart_delay_out_of_range(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "runservice", "--restart-delay", "0"],
        cwd=REPO,
        env={**os.environ, "REDIS_URL": settings.REDIS_URL, "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--restart-delay must be more than 0" in done.stderr
