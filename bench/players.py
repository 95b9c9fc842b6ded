"""N headless players against one GPU worker: presented fps, key-to-photon by hop, worker CPU.

The real path end to end: uvicorn (web tier, signalling relay) and `manage.py rungpuworker`
(placeholder model, or --checkpoint with the recorded starting scenes; loopback-only ICE) as
subprocesses, one Chromium per player (its own profile), each signed in, queued, confirmed and
playing. During the measuring window every player taps D, then A (down 250 ms, up 250 ms), so
the view moves and comes back. Everything is measured by the page itself
(frontend/static/js/play-stats.js) from what its <video> element presents: presented fps and
frame intervals, key-to-photon by picture (key press to the first presented frame whose picture
changed) and by the worker's acks, and each change's path hop by hop (page, data channel, wait
for the frame, model step, conversion, encoder queue, encode and send, network, jitter buffer,
decode, display) from the worker's timestamps and the browser's frame metadata and getStats.

--variants compares latency levers in one run, each on a fresh worker and page: `all` (every
lever on, the defaults), `before` (every lever off), and `no-event`, `no-jitter0`, `no-early`,
`queue1`/`queue2` (all but one lever; see VARIANTS).

Usage: python bench/players.py [--players 1 2 4] [--seconds 10] [--checkpoint FILE]
       [--variants all before -early ...] [--wipe]
(`--checkpoint models/crafter-small.safetensors` plays the default model in the Coast scene.)
With the placeholder model each player must decode at least PLACEHOLDER_MIN_FPS; the script
exits with status 1 when one does not (the end-to-end tests only check that frames flow).
Uses its own data directory (var/bench-players: SQLite and the embedded Redis) unless
DATABASE_URL / REDIS_URL are set. Each run deletes every session, ticket, worker, world and pool
in its database: any database but its own SQLite file needs --wipe to say that is meant.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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

from common import cpu_seconds, read_proc  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from page_stats import close_window, percentile, reset, tap_for  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, free_port, wait_for  # noqa: E402
from tests.e2e.players import log_in, queue_and_play, start_playing  # noqa: E402
from webapp.accounts.models import User  # noqa: E402
from webapp.fleet.models import GpuPool, Worker  # noqa: E402
from webapp.play.models import PlaySession  # noqa: E402
from webapp.queue.models import Ticket  # noqa: E402
from webapp.worlds.models import PromptImage, World  # noqa: E402
from webapp.worlds.placeholders import placeholder_image, png_bytes  # noqa: E402
from webapp.worlds.scenes import install, recorded_scenes  # noqa: E402

PASSWORD = "correct horse battery staple"
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

    def __init__(self, slots: int, worker_env: dict | None = None):
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
        worker = {**self.env, **(worker_env or {})}
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
            worker,
        )
        wait_for(lambda: Worker.objects.filter(state=Worker.State.READY).exists(), 60, "the worker")

    def _spawn(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        return subprocess.Popen(
            command, env=env or self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
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


@dataclass(frozen=True)
class Variant:
    """One combination of latency levers: the page's (window.reverieTuning) and the worker's."""

    page: dict = field(default_factory=dict)
    worker: dict = field(default_factory=dict)


BEFORE_PAGE = {"inputOnEvent": False, "jitterBufferTarget": None}
BEFORE_WORKER = {"WORKER_EARLY_TICKS": "false", "WEBRTC_FRAME_QUEUE": "2"}
VARIANTS = {
    "all": Variant(),
    "before": Variant(BEFORE_PAGE, BEFORE_WORKER),
    "no-event": Variant({"inputOnEvent": False}),  # input on the 60 Hz timer only
    "no-jitter0": Variant({"jitterBufferTarget": None}),  # the browser's own jitter buffer
    "no-early": Variant(worker={"WORKER_EARLY_TICKS": "false"}),  # fixed frame cadence
    "queue1": Variant(worker={"WEBRTC_FRAME_QUEUE": "1"}),
    "queue2": Variant(worker={"WEBRTC_FRAME_QUEUE": "2"}),
}
# The hop table's rows: (key in the page's hop records, what it is).
HOPS = (
    ("input", "page: key event to message sent"),
    ("uplink", "data channel to the worker"),
    ("wait", "wait for the frame's step"),
    ("generate", "model step"),
    ("convert", "RGB to YUV, queued"),
    ("queue", "wait for the encoder"),
    ("encode", "encode, packetise, send"),
    ("downlink", "network to the last packet"),
    ("buffer", "jitter buffer and queues"),
    ("decode", "decode"),
    ("display", "composite to on screen"),
    ("total", "key-to-photon (acks)"),
)


def measure(
    count: int,
    seconds: float,
    wipe: bool = False,
    checkpoint: str = "",
    variant=None,
    world: str = "Coast",
) -> dict:
    variant = variant or Variant()
    fresh_fleet(count, wipe, checkpoint)
    stack = Stack(count, variant.worker)
    profiles: list[str] = []
    try:
        with sync_playwright() as playwright:
            pages = []
            for i in range(count):
                profiles.append(tempfile.mkdtemp(prefix="reverie-bench-chromium-"))
                context = playwright.chromium.launch_persistent_context(
                    profiles[-1], executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
                )
                context.add_init_script(f"window.reverieTuning = {json.dumps(variant.page)};")
                page = context.new_page()
                log_in(page, stack.url, f"bench{i}", PASSWORD)
                queue_and_play(page, world)
                start_playing(page)
                pages.append(page)
            pages[0].wait_for_timeout(2000)  # past the first keyframe and bitrate ramp
            start = reset(pages)
            cpu0, wall0 = cpu_seconds(stack.worker.pid), time.monotonic()
            tap_for(pages, seconds)
            cpu = (cpu_seconds(stack.worker.pid) - cpu0) / (time.monotonic() - wall0)
            measured = close_window(pages, start)
    finally:
        stack.stop()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)
    return {**measured, "cpu": cpu}


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def summary_row(name: str, count: int, result: dict) -> str:
    snaps = result["snapshots"]

    def pooled(key: str) -> list[float]:
        return [v for s in snaps for v in s[key]]

    presented = ", ".join(f"{f:.1f}" for f in result["presented_fps"])
    decoded = ", ".join(f"{f:.1f}" for f in result["fps"])
    unseen = sum(s["unseen"] for s in snaps)
    probed = pooled("probed")
    acks = pooled("latencies")
    jitter = statistics.mean(r["jitter_ms"] for r in result["receivers"])
    dropped = sum(r["dropped"] for r in result["receivers"])
    return (
        f"| {name} | {count} | {presented} | {ms(percentile(pooled('intervalsMs'), 0.95))} |"
        f" {ms(percentile(probed, 0.5))} | {ms(percentile(probed, 0.95))} |"
        f" {len(probed)}/{len(probed) + unseen} | {ms(percentile(acks, 0.5))} |"
        f" {ms(percentile(acks, 0.95))} | {decoded} | {jitter:.1f} ms | {dropped} |"
        f" {100 * result['cpu']:.0f}% |"
    )


def hop_table(name: str, result: dict) -> list[str]:
    records = [h for s in result["snapshots"] for h in s["hops"]]
    lines = [
        f"hops of {len(records)} timed changes, variant {name} (ms; network hops assume the "
        "page and worker share a clock, as here)",
        "| hop | p50 | p95 |",
        "|---|---|---|",
    ]
    exact = [h for h in records if h.get("exact")]
    for key, label in HOPS:
        # A change whose own frame was not presented (a newer one was, in the same display
        # refresh) has no frame hops of its own: it counts in the total only.
        chosen = records if key == "total" else exact
        values = [h[key] for h in chosen if h.get(key) is not None]
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        lines.append(f"| {label} | {ms(p50)} | {ms(p95)} |")
    lines.append(f"{len(records) - len(exact)} of them were first shown in a newer frame")
    receivers = result["receivers"]
    lines.append(
        "getStats per frame: jitter buffer "
        + ", ".join(f"{r['jitter_ms']:.1f}" for r in receivers)
        + " ms, decode "
        + ", ".join(f"{r['decode_ms']:.1f}" for r in receivers)
        + " ms, dropped "
        + ", ".join(str(r["dropped"]) for r in receivers)
    )
    diffs = [d for s in result["snapshots"] for d in s["diffs"]]
    if diffs:
        lines.append(
            "picture change between presented frames (mean grey level): p50 "
            f"{percentile(diffs, 0.5):.2f}, p90 {percentile(diffs, 0.9):.2f}, "
            f"max {max(diffs):.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["all"],
        choices=sorted(VARIANTS),
        help="latency levers to compare (each on a fresh worker); default: all levers on",
    )
    parser.add_argument(
        "--wipe",
        action="store_true",
        help="allow emptying a database other than the bench's own SQLite file",
    )
    parser.add_argument(
        "--checkpoint", default="", help="serve this model file instead of the placeholder"
    )
    parser.add_argument("--world", default="Coast", help="the world every player plays")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    args = parser.parse_args()
    if args.checkpoint and not Path(args.checkpoint).is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    check_wipe_allowed(args.wipe)
    checkpoint = str(Path(args.checkpoint).resolve()) if args.checkpoint else ""
    model = f"model {args.checkpoint}" if args.checkpoint else "placeholder model"
    print(
        f"{os.cpu_count()} cores ({cpu_model()}), load average {os.getloadavg()[0]:.2f} at "
        f"start; {model} at 20 fps, VP8, loopback; {args.seconds:.0f} s window"
    )
    print(
        "| variant | players | presented fps per player | frame interval p95 |"
        " key-to-photon (picture) p50 | p95 | presses seen | key-to-photon (acks) p50 | p95 |"
        " decoded fps | jitter buffer | dropped | worker CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    below = []
    details = []
    raw: list[dict] = []
    for name in args.variants:
        for count in args.players:
            result = measure(count, args.seconds, args.wipe, checkpoint, VARIANTS[name], args.world)
            raw.append({"variant": name, "players": count, **result})
            print(summary_row(name, count, result), flush=True)
            details.append(hop_table(f"{name}, {count} player(s)", result))
            floor = None if checkpoint else PLACEHOLDER_MIN_FPS.get(count)
            if floor is not None and min(result["fps"]) < floor:
                below.append(f"{count} player(s): {min(result['fps']):.1f} < {floor:.0f} fps")
    for lines in details:
        print()
        print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(raw))
    if below:
        sys.exit("below the placeholder's frame-rate floor: " + "; ".join(below))


def cpu_model() -> str:
    for line in read_proc(Path("/proc/cpuinfo")).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    from common import run_with_own_redis

    run_with_own_redis(main)
