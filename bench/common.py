"""Shared bits of the benchmark scripts: path setup, timing, tables, machine description."""

from __future__ import annotations

import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # scripts run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

logger = logging.getLogger(__name__)


def setup(threads: int) -> None:
    """Fix the thread count (2 on the project machine) and keep logs quiet."""
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """min / median / p95 of a list of timings, in seconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"min": ordered[0], "median": statistics.median(ordered), "p95": p95}


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A GitHub-markdown table, so the output pastes straight into a README."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def machine() -> str:
    """One line naming the CPU, core count, torch version and thread count."""
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load:.2f} at start"
    )


def run_with_own_redis(main: Callable[[], object]) -> None:
    """Run `main` with the embedded Redis started if the settings use it (no REDIS_URL), and
    stop it afterwards if this bench started it, so no redis-server outlives the bench."""
    from django.conf import settings

    from webapp.embedded_redis import start_if_embedded, started_here, stop_embedded_redis

    start_if_embedded()
    try:
        main()
    finally:
        if started_here(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT):
            stop_embedded_redis(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT)


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database `url` names (a bench's own) if it is missing."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its live children, such as the model process
    (Linux /proc)."""
    stat = read_proc(Path(f"/proc/{pid}/stat"))
    if not stat:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    # A child is listed under the thread that started it (the model process: the device loop).
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in read_proc(task / "children").split()
    ]
    return own + sum(cpu_seconds(child) for child in children)


def read_proc(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:  # a thread (or process) that ended while we looked
        return ""


def placeholder_world(slug: str, slots_per_worker: int):
    """A fresh pool named `slug` and one world in it with the placeholder picture: (pool, world)."""
    from webapp.fleet.models import GpuPool
    from webapp.worlds.models import World
    from webapp.worlds.placeholders import placeholder_image, png_bytes

    pool = GpuPool.objects.create(name=slug, slug=slug, slots_per_worker=slots_per_worker)
    world = World.objects.create(
        name=slug.title(), slug=slug, pool=pool, thumbnail_png=png_bytes(placeholder_image("coast"))
    )
    return pool, world


def logged_in_players(count: int, start: int, prefix: str = "load") -> list:
    """Accounts prefix{start}... with a logged-in session each: (user, session cookie value),
    made straight in the database (hashing a password per log-in would take minutes)."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from webapp.accounts.models import User

    password = make_password("load test password")
    users = User.objects.bulk_create(
        User(username=f"{prefix}{start + n}", password=password) for n in range(count)
    )
    backend = settings.AUTHENTICATION_BACKENDS[0]
    rows, cookies = [], []
    for user in users:
        store = SessionStore()
        key = store._get_new_session_key()
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": backend,
            "_auth_user_hash": user.get_session_auth_hash(),
        }
        rows.append(
            Session(
                session_key=key,
                session_data=store.encode(data),
                expire_date=timezone.now() + timezone.timedelta(days=1),
            )
        )
        cookies.append(key)
    Session.objects.bulk_create(rows)
    return list(zip(users, cookies, strict=True))
