"""Run the whole service in the foreground: web, control worker, beat and a GPU worker.

Ctrl-C (or SIGTERM) stops every child cleanly: the GPU worker ends its sessions as a worker
shutdown, so players are told, and the embedded Redis is stopped if this command started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp.embedded_redis import stop_embedded_redis

STOP_TIMEOUT = 20
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run web (uvicorn), a Celery control worker, Celery beat and a GPU worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--gpu-workers",
            type=int,
            default=1,
            help="GPU worker processes to start for the default pool",
        )
        parser.add_argument("--pool", default=settings.WORKER_POOL)

    def handle(self, *args, **options):
        if not 0 <= options["gpu_workers"] <= 16:
            raise CommandError("--gpu-workers must be between 0 and 16")
        env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1"}
        if options["host"] in LOOPBACK_HOSTS and not settings.WEBRTC_HOST_ADDRESSES:
            # Only browsers on this machine can reach a loopback web server, so the worker
            # offers them loopback ICE candidates (aioice leaves loopback out by default).
            env["WEBRTC_HOST_ADDRESSES"] = "127.0.0.1"
        python = sys.executable
        beat_schedule = str(settings.DATA_DIR / "celerybeat-schedule")
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "webapp.asgi:application",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--lifespan",
                "off",
            ],
            "control": [
                python,
                "-m",
                "celery",
                "-A",
                "webapp",
                "worker",
                "--queues",
                "control",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--hostname",
                "control@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "webapp",
                "beat",
                "--schedule",
                beat_schedule,
                "--loglevel",
                "INFO",
            ],
        }
        for n in range(options["gpu_workers"]):
            commands[f"gpu{n}"] = [python, "manage.py", "rungpuworker", "--pool", options["pool"]]
        children = {
            name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR, start_new_session=True)
            for name, cmd in commands.items()
        }
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"Reverie is running at {url} (Ctrl-C to stop)"))
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._watch(children)
        except KeyboardInterrupt:
            self.stdout.write("stopping...")
        finally:
            self._stop(children)

    def _watch(self, children):
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    raise CommandError(f"{name} exited with code {child.returncode}; stopping")
            time.sleep(0.5)

    def _stop(self, children):
        # Children run in their own sessions, so Ctrl-C reached only us. GPU workers stop
        # first while web and Redis still run, so their "worker shut down" reaches players.
        gpu = {name: child for name, child in children.items() if name.startswith("gpu")}
        rest = {name: child for name, child in children.items() if name not in gpu}
        for group in (gpu, rest):
            for child in group.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for name, child in group.items():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stderr.write(f"{name} did not stop in {STOP_TIMEOUT}s; killing it")
                    child.kill()
        if not os.environ.get("REDIS_URL"):
            stop_embedded_redis(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT)
        self.stdout.write("stopped.")
