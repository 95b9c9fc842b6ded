"""Run deploy/docker/compose.yml for real: build the image, start the stack, play one session.

What an operator does with deploy/README.md's Compose steps, on this machine:
1. Docker: uses a running dockerd, or starts Debian's (docker.io) and stops it at the end.
2. Base images: Docker Hub cannot be reached here, so the bases are stand-ins built locally
   from a debootstrap bookworm minbase (bench/compose/*.Dockerfile): Debian's Python 3.11 for
   the image's PYTHON_IMAGE, Debian's PostgreSQL 15 for postgres:16, Debian's Redis 7.0 for
   redis:7. A small override file swaps them in; compose.yml itself runs unchanged.
3. A copy of the working tree (tracked and untracked files that git does not ignore) with
   `deploy/.env` copied from `deploy/.env.example`, changing only what its README step says an
   operator sets: the secret key, the host name and its CSRF origin (here 127.0.0.1:8000).
4. `docker-compose build`, `up -d`; waits for every healthcheck; checks web /healthz, /readyz
   and /metrics, and the worker's /readyz and /metrics on its container address.
5. One Chromium player signs up, queues, confirms and plays the default world for
   --play-seconds while holding move keys; the page's decoded fps is printed, then the
   metrics a live session must move (frames, live sessions) and, after the player leaves, the
   session's end. Media goes straight to the worker container's bridge address (this host
   routes to it); a browser on another network needs compose's TURN profile (README step 5).
6. The worker is stopped with SIGTERM (`docker-compose stop gpu`): it drains and exits.
7. `docker-compose down -v` (unless --keep) and dockerd stopped if this script started it.

Needs root (dockerd, debootstrap), Debian's docker.io, docker-compose and debootstrap, the
Debian mirror and PyPI for the image builds, and the torch CPU wheel (--wheels). Not part of
CI: a first run takes about ten minutes, later runs reuse the bases and layers.

Usage: python bench/compose_stack.py [--play-seconds 20] [--keep] [--rebuild-bases]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()  # only for the browser helpers' imports: nothing here touches a database

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from tests.e2e.players import decoded_fps, queue_and_play, sign_up, start_playing  # noqa: E402

WORK = REPO / "var" / "compose-bench"
STANDINS = REPO / "bench" / "compose"
PROJECT = "reverie-bench"
BOOKWORM = "reverie-standin/bookworm:minbase"
STANDIN_IMAGES = {  # tag -> Dockerfile under bench/compose/
    "reverie-standin/python:3.11": "python.Dockerfile",
    "reverie-standin/postgres:15": "postgres.Dockerfile",
    "reverie-standin/redis:7.0": "redis.Dockerfile",
}
URL = "http://127.0.0.1:8000"
APP_SERVICES = ("migrate", "web", "control", "beat", "gpu")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(
    *command: str, cwd: Path | None = None, input: bytes | None = None, capture: bool = False
) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        input=input,
        check=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout.decode() if capture else ""


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def start_dockerd() -> subprocess.Popen | None:
    """None if a daemon already answers; else ours, waited for until it answers."""
    if docker_answers():
        return None
    if not shutil.which("dockerd"):
        sys.exit("compose_stack: no dockerd; apt-get install -y docker.io docker-compose")
    WORK.mkdir(parents=True, exist_ok=True)
    say("starting dockerd")
    log = open(WORK / "dockerd.log", "ab")
    daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while not docker_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"compose_stack: dockerd did not start; see {WORK / 'dockerd.log'}")
        time.sleep(1)
    return daemon


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def build_standins(wheels: Path, rebuild: bool) -> None:
    """The bookworm minbase (debootstrap, imported) and the three stand-in images on it."""
    if rebuild or not image_exists(BOOKWORM):
        rootfs = WORK / "rootfs"
        if rebuild or not (rootfs / "etc" / "debian_version").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            say("debootstrap bookworm minbase (a few minutes)")
            run("debootstrap", "--variant=minbase", "bookworm", str(rootfs))
        say(f"importing {BOOKWORM}")
        tar = subprocess.run(
            ["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True
        ).stdout
        run("docker", "import", "-", BOOKWORM, input=tar)
    context = WORK / "standin-context"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(STANDINS, context)
    (context / "wheels").mkdir()
    torch_wheels = sorted(wheels.glob("torch-2.13.0*cp311*.whl"))
    if not torch_wheels:
        sys.exit(f"compose_stack: no torch 2.13.0 wheel for Python 3.11 in {wheels}")
    shutil.copy(torch_wheels[-1], context / "wheels")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", context)
    for tag, dockerfile in STANDIN_IMAGES.items():
        if rebuild or not image_exists(tag):
            say(f"building stand-in {tag}")
            run(
                "docker",
                "build",
                "--network",
                "host",
                "--build-arg",
                f"BOOKWORM={BOOKWORM}",
                "-f",
                str(context / dockerfile),
                "-t",
                tag,
                str(context),
            )


def copy_tree() -> Path:
    """The working tree as a fresh clone would have it, plus what git has not seen yet."""
    source = WORK / "src"
    shutil.rmtree(source, ignore_errors=True)
    files = run(
        "git",
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        cwd=REPO,
        capture=True,
    ).split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    return source


def write_env(source: Path) -> dict[str, str]:
    """deploy/.env from the example, with what README step 2 says to set; returns the changes."""
    changes = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": URL,
    }
    lines = []
    for line in (source / "deploy" / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={changes[key]}" if key in changes and "=" in line else line)
    (source / "deploy" / ".env").write_text("\n".join(lines) + "\n")
    return changes


def write_override(source: Path) -> Path:
    """Stand-in images for db and redis; the app built on the stand-in Python."""
    build = {
        "context": "../..",
        "dockerfile": "deploy/docker/Dockerfile",
        "target": "cpu",
        "network": "host",
        "args": {"PYTHON_IMAGE": "reverie-standin/python:3.11"},
    }
    services = {
        "db": {"image": "reverie-standin/postgres:15"},
        "redis": {"image": "reverie-standin/redis:7.0"},
    }
    services.update({name: {"build": build} for name in APP_SERVICES})
    override = source / "deploy" / "docker" / "compose.standin.yml"
    # JSON is YAML: no YAML writer needed.
    override.write_text(json.dumps({"version": "3.8", "services": services}, indent=1))
    return override


class Stack:
    def __init__(self, source: Path, override: Path):
        self.source = source
        self.files = ["-f", "deploy/docker/compose.yml", "-f", str(override)]

    def compose(self, *args: str, capture: bool = False) -> str:
        return run(
            "docker-compose", "-p", PROJECT, *self.files, *args, cwd=self.source, capture=capture
        )

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service, capture=True).strip()

    def state(self, service: str) -> dict:
        ident = self.container(service)
        if not ident:
            return {}
        return json.loads(run("docker", "inspect", ident, capture=True))[0]["State"]

    def address(self, service: str) -> str:
        ident = self.container(service)
        networks = json.loads(run("docker", "inspect", ident, capture=True))[0]["NetworkSettings"][
            "Networks"
        ]
        return next(iter(networks.values()))["IPAddress"]

    def wait_healthy(self, services: tuple[str, ...], timeout: float) -> float:
        start = time.monotonic()
        while True:
            states = {name: self.state(name) for name in services}
            health = {
                name: s.get("Health", {}).get("Status", s.get("Status"))
                for name, s in states.items()
            }
            if all(h == "healthy" for h in health.values()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                self.compose("ps")
                sys.exit(f"compose_stack: not healthy after {timeout:.0f} s: {health}")
            time.sleep(2)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus text-format metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def check_endpoints(stack: Stack) -> str:
    for path in ("/healthz", "/readyz"):
        status, body = get(URL + path)
        say(f"web {path}: {status} {body.strip()}")
        if status != 200:
            sys.exit(f"compose_stack: web {path} answered {status}")
    worker = f"http://{stack.address('gpu')}:9100"
    status, body = get(worker + "/readyz")
    say(f"worker {worker}/readyz: {status} {body.strip()}")
    return worker


def play(seconds: float) -> float:
    """One player in Chromium: sign up, queue, confirm, walk; the decoded fps."""
    profile = WORK / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = context.new_page()
            sign_up(page, URL, f"bench{secrets.token_hex(3)}")
            started = time.monotonic()
            session = queue_and_play(page, "Coast")
            say(f"session {session}: video {time.monotonic() - started:.1f} s after Play")
            start_playing(page)
            page.keyboard.down("w")
            fps = decoded_fps(page, seconds)
            page.keyboard.up("w")
            return fps
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--play-seconds", type=float, default=20.0)
    parser.add_argument(
        "--wheels",
        type=Path,
        default=Path("/opt/wheels"),
        help="a folder holding the torch 2.13.0 CPU wheel for Python 3.11",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--rebuild-bases", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("compose_stack: needs root (dockerd, debootstrap)")
    if not shutil.which("docker-compose"):
        sys.exit("compose_stack: no docker-compose; apt-get install -y docker-compose")

    daemon = start_dockerd()
    stack = None
    try:
        build_standins(args.wheels, args.rebuild_bases)
        source = copy_tree()
        changes = write_env(source)
        say(f"deploy/.env = deploy/.env.example with {', '.join(changes)} set")
        stack = Stack(source, write_override(source))
        started = time.monotonic()
        stack.compose("build")
        say(f"built reverie:cpu in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        stack.compose("up", "-d")
        waited = stack.wait_healthy(("db", "redis", "web", "control", "gpu"), timeout=300)
        say(
            f"every healthcheck passed {time.monotonic() - started:.0f} s after up "
            f"({waited:.0f} s of waiting)"
        )
        migrate = stack.state("migrate")
        say(f"migrate exited {migrate.get('ExitCode')}")
        stack.compose("ps")
        worker = check_endpoints(stack)

        fps = play(args.play_seconds)
        say(f"decoded {fps:.1f} fps over {args.play_seconds:.0f} s of walking")
        _, worker_metrics = get(worker + "/metrics")
        _, web_metrics = get(URL + "/metrics")
        say(
            f"worker reverie_frames_total {metric(worker_metrics, 'reverie_frames_total'):.0f}, "
            f"web reverie_sessions_live {metric(web_metrics, 'reverie_sessions_live'):.0f}"
        )
        # The page closed without "Leave": the session ends after the disconnect grace.
        deadline = time.monotonic() + 90
        ends = 0.0
        while time.monotonic() < deadline and not ends:
            time.sleep(3)
            ends = metric(get(URL + "/metrics")[1], "reverie_session_ends_total")
        say(f"web reverie_session_ends_total {ends:.0f} after the player left")
        if not fps or not ends:
            sys.exit("compose_stack: the session did not play and end")

        started = time.monotonic()
        stack.compose("stop", "gpu")
        gpu = stack.state("gpu")
        say(
            f"gpu stopped by SIGTERM in {time.monotonic() - started:.1f} s, "
            f"exit code {gpu.get('ExitCode')}"
        )
        stack.compose("logs", "--tail", "3", "gpu")
    finally:
        if stack and not args.keep:
            stack.compose("down", "-v", "--remove-orphans")
        if daemon and not args.keep:
            say("stopping dockerd")
            daemon.terminate()
            daemon.wait(timeout=60)


if __name__ == "__main__":
    main()
