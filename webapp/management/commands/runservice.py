"""Run the whole service in the foreground: web, control worker, beat and a GPU worker.

The children are supervised (webapp/supervisor.py): one that dies is logged and restarted with
backoff while the rest go on, so a crashed GPU worker costs its own players their session (the
reaper tells them, and they get the front of the queue) but never the web server. Ctrl-C (or
SIGTERM) stops every child cleanly: the GPU workers end their sessions as a worker shutdown,
so players are told, and the embedded Redis is stopped if no REDIS_URL was given.
"""

from __future__ import annotations

import os
import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp.embedded_redis import start_if_embedded, stop_embedded_redis
from webapp.supervisor import Backoff, Supervisor

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
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=int(os.environ.get("WORKER_METRICS_PORT") or 8100),
            help="port of gpu0's /healthz, /readyz and /metrics (gpu1 the next, ...; 0: none)",
        )
        parser.add_argument(
            "--restart-delay",
            type=float,
            default=1.0,
            help="seconds before a dead child is started again (doubles per quick death)",
        )

    def handle(self, *args, **options):
        if not 0 <= options["gpu_workers"] <= 16:
            raise CommandError("--gpu-workers must be between 0 and 16")
        if not 0 <= options["metrics_port"] <= 65535 - 16:
            raise CommandError("--metrics-port must be a port number (0: none)")
        if not 0 < options["restart_delay"] <= 300:
            raise CommandError("--restart-delay must be more than 0 and at most 300 seconds")
        start_if_embedded()
        env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1"}
        # Ctrl-C on a laptop stops at once: sessions end as a worker shutdown, with no drain
        # (unless WORKER_DRAIN_SECONDS is set, and below the stop timeout).
        env.setdefault("WORKER_DRAIN_SECONDS", "0")
        # The workers' health and metrics listen where the web server does.
        env.setdefault("WORKER_METRICS_ADDRESS", options["host"])
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
            if options["metrics_port"]:
                commands[f"gpu{n}"] += ["--metrics-port", str(options["metrics_port"] + n)]
        supervisor = Supervisor(
            commands,
            env=env,
            cwd=settings.BASE_DIR,
            backoff=Backoff(
                initial=options["restart_delay"], maximum=max(30.0, options["restart_delay"])
            ),
            # GPU workers stop while web and Redis still run, so "worker shut down" reaches
            # their players.
            first_to_stop=lambda name: name.startswith("gpu"),
            stop_timeout=STOP_TIMEOUT,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            supervisor.start()
            url = f"http://{options['host']}:{options['port']}/"
            self.stdout.write(self.style.SUCCESS(f"Reverie is running at {url} (Ctrl-C to stop)"))
            supervisor.run()
        except KeyboardInterrupt:
            self.stdout.write("stopping...")
        finally:
            supervisor.stop()
            if settings.EMBEDDED_REDIS:
                stop_embedded_redis(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT)
            self.stdout.write("stopped.")
