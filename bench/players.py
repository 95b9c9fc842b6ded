"""N headless players against one GPU worker: decoded fps, key-to-photon latency, worker CPU.

The real path end to end: uvicorn (web tier, signalling relay) and `manage.py rungpuworker`
(placeholder model, or --checkpoint with the recorded starting scenes; loopback-only ICE) as
subprocesses, one Chromium per player (its own profile), each signed in, queued, confirmed and
playing. During the measuring window every
player taps D (down, then up) every 250 ms; the page times each change from the key event to
the first presented video frame that reflects it (see frontend/static/js/play-stats.js).

Usage: python bench/players.py [--players 1 2 4] [--seconds 10] [--checkpoint FILE] [--wipe]
(`--checkpoint models/crafter-small.safetensors` plays the default model in the Coast scene.)
With the placeholder model each player must decode at least PLACEHOLDER_MIN_FPS; the script
exits with status 1 when one does not (the end-to-end tests only check that frames flow).
Uses its own data directory (var/bench-players: SQLite and the embedded Redis) unless
DATABASE_URL / REDIS_URL are set. Each run deletes every session, ticket, worker, world and pool
in its database: any database but its own SQLite file needs --wipe to say that is meant.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
BENCH_DATA_DIR = REPO / "var" / "bench-players"
os.environ.setdefault("DATA_DIR", str(BENCH_DATA_DIR))
# Playwright's sync API keeps a loop in this thread; the ORM calls between steps are plain.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, free_port, wait_for  # noqa: E402
from tests.e2e.players import DECODED_JS, log_in, queue_and_play, start_playing  # noqa: E402
from webapp.accounts.models import User  # noqa: E402
from webapp.fleet.models import GpuPool, Worker  # noqa: E402
from webapp.play.models import PlaySession  # noqa: E402
from webapp.queue.models import Ticket  # noqa: E402
from webapp.worlds.models import PromptImage, World  # noqa: E402
from webapp.worlds.placeholders import placeholder_image, png_bytes  # noqa: E402
from webapp.worlds.scenes import install, recorded_scenes  # noqa: E402

PASSWORD = "correct horse battery staple"
TAP_MS = 250
# Decoded fps per player the placeholder (at 20 fps) must reach, by number of players.
PLACEHOLDER_MIN_FPS = {1: 18.0, 2: 15.0}


class NotTheBenchDatabase(SystemExit):
    """The configured database is not the bench's own and --wipe was not given."""


def own_database() -> bool:
    """True when the database is the bench's SQLite file inside its own data directory."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return False
    return Path(str(db["NAME"])).resolve() == (BENCH_DATA_DIR / "reverie.sqlite3").resolve()


def check_wipe_allowed(wipe: bool) -> None:
    """Refuse to empty a database that may hold real players unless told to."""
    if wipe or own_database():
        return
    db = settings.DATABASES["default"]
    raise NotTheBenchDatabase(
        f"refusing to wipe database {db['NAME']!r} ({db['ENGINE']}): it is not the bench's own "
        f"SQLite file under {BENCH_DATA_DIR}; pass --wipe to empty it anyway"
    )


def fresh_fleet(slots: int, wipe: bool = False, checkpoint: str = "") -> GpuPool:
    """A clean database with one pool of `slots` slots, a Coast world, and nobody playing.

    With a checkpoint the pool runs that model and the worlds are the recorded scenes (they
    include Coast); without, the placeholder model plays the placeholder coast.
    """
    check_wipe_allowed(wipe)
    call_command("migrate", verbosity=0)
    PlaySession.objects.all().delete()
    Ticket.objects.all().delete()
    Worker.objects.all().delete()
    World.objects.all().delete()
    GpuPool.objects.all().delete()
    pool = GpuPool.objects.create(
        name="Bench",
        slug="bench",
        slots_per_worker=slots,
        session_seconds=600,
        idle_seconds=300,
        disconnect_grace_seconds=30,
        frame_rate=20,
        checkpoint=checkpoint,
    )
    if checkpoint:
        install(recorded_scenes(settings.WORLD_SCENES_DIR), pool)
    else:
        image = placeholder_image("coast")
        world = World.objects.create(
            name="Coast", slug="coast", pool=pool, thumbnail_png=png_bytes(image)
        )
        PromptImage.objects.create(world=world, index=0, png=png_bytes(image))
    for i in range(slots):
        if not User.objects.filter(username=f"bench{i}").exists():
            User.objects.create_user(username=f"bench{i}", password=PASSWORD)
    return pool


class Stack:
    """Web server and one GPU worker as subprocesses, logs in a temporary directory."""

    def __init__(self, slots: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = Path(tempfile.mkdtemp(prefix="reverie-bench-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "WEBRTC_HOST_ADDRESSES": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        self.web = self._spawn(
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
        self.worker = self._spawn(
            "worker",
            [sys.executable, "manage.py", "rungpuworker", "--pool", "bench", "--slots", str(slots)],
        )
        wait_for(lambda: Worker.objects.filter(state=Worker.State.READY).exists(), 60, "the worker")

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        return subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        for process in (self.worker, self.web):
            process.terminate()
        for process in (self.worker, self.web):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return os.environ["DATABASE_URL"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its live children, such as the model process
    (Linux /proc)."""
    stat = _read(Path(f"/proc/{pid}/stat"))
    if not stat:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    # A child is listed under the thread that started it (the model process: the device loop).
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in _read(task / "children").split()
    ]
    return own + sum(cpu_seconds(child) for child in children)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:  # a thread (or process) that ended while we looked
        return ""


def measure(count: int, seconds: float, wipe: bool = False, checkpoint: str = "") -> dict:
    fresh_fleet(count, wipe, checkpoint)
    stack = Stack(count)
    profiles: list[str] = []
    try:
        with sync_playwright() as playwright:
            pages = []
            for i in range(count):
                profiles.append(tempfile.mkdtemp(prefix="reverie-bench-chromium-"))
                context = playwright.chromium.launch_persistent_context(
                    profiles[-1], executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
                )
                page = context.new_page()
                log_in(page, stack.url, f"bench{i}", PASSWORD)
                queue_and_play(page, "Coast")
                start_playing(page)
                pages.append(page)
            pages[0].wait_for_timeout(2000)  # past the first keyframe and bitrate ramp
            for page in pages:
                page.evaluate("() => { window.reverie.stats.latencies = []; }")
            start = [page.evaluate(DECODED_JS) for page in pages]
            cpu0, wall0 = cpu_seconds(stack.worker.pid), time.monotonic()
            held = False
            while time.monotonic() - wall0 < seconds:
                held = not held
                for page in pages:
                    (page.keyboard.down if held else page.keyboard.up)("d")
                pages[0].wait_for_timeout(TAP_MS)
            for page in pages:
                page.keyboard.up("d")
            cpu = (cpu_seconds(stack.worker.pid) - cpu0) / (time.monotonic() - wall0)
            end = [page.evaluate(DECODED_JS) for page in pages]
            pages[0].wait_for_timeout(500)  # the last taps reach the screen
            snapshots = [page.evaluate("() => window.reverie.stats.snapshot()") for page in pages]
    finally:
        stack.stop()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)
    fps = [(e[0] - s[0]) / ((e[1] - s[1]) / 1000) for s, e in zip(start, end, strict=True)]
    return {"fps": fps, "snapshots": snapshots, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--wipe",
        action="store_true",
        help="allow emptying a database other than the bench's own SQLite file",
    )
    parser.add_argument(
        "--checkpoint", default="", help="serve this model file instead of the placeholder"
    )
    args = parser.parse_args()
    if args.checkpoint and not Path(args.checkpoint).is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    check_wipe_allowed(args.wipe)
    checkpoint = str(Path(args.checkpoint).resolve()) if args.checkpoint else ""
    model = f"model {args.checkpoint}" if args.checkpoint else "placeholder model"
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"{model} at 20 fps, VP8, loopback; {args.seconds:.0f} s window"
    )
    print("| players | decoded fps per player | key-to-photon p50 | p95 | samples | worker CPU |")
    print("|---|---|---|---|---|---|")
    below = []
    for count in args.players:
        result = measure(count, args.seconds, args.wipe, checkpoint)
        p50 = [s["p50"] for s in result["snapshots"] if s["p50"] is not None]
        p95 = [s["p95"] for s in result["snapshots"] if s["p95"] is not None]
        samples = sum(s["samples"] for s in result["snapshots"])
        fps = ", ".join(f"{f:.1f}" for f in result["fps"])
        p50_text = f"{statistics.median(p50):.0f} ms" if p50 else "n/a"
        p95_text = f"{max(p95):.0f} ms" if p95 else "n/a"
        print(
            f"| {count} | {fps} | {p50_text} | {p95_text} | {samples} |"
            f" {100 * result['cpu']:.0f}% of a core |",
            flush=True,
        )
        floor = None if checkpoint else PLACEHOLDER_MIN_FPS.get(count)
        if floor is not None and min(result["fps"]) < floor:
            below.append(f"{count} player(s): {min(result['fps']):.1f} < {floor:.0f} fps")
    if below:
        sys.exit("below the placeholder's frame-rate floor: " + "; ".join(below))


if __name__ == "__main__":
    from common import stop_own_redis

    try:
        main()
    finally:
        stop_own_redis()
