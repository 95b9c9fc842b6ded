"""Run a GPU worker: announce slots for one pool, warm the model, serve its sessions."""

from __future__ import annotations

import logging
import time

from celery.signals import worker_shutting_down
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp import __version__
from webapp.celery import app as celery_app
from webapp.embedded_redis import start_if_embedded
from webapp.fleet.models import GpuPool
from webapp.worker import tasks  # noqa: F401  (registers the session task with this worker)
from webapp.worker.process import WorkerProcess

logger = logging.getLogger(__name__)

ENGINE_RUNTIME = "inference.engine_runtime.EngineRuntime"
PLACEHOLDER_RUNTIME = "inference.placeholder.PlaceholderRuntime"
POOL_POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = "Run a GPU worker that owns slots in one pool and plays sessions on them."

    def add_arguments(self, parser):
        parser.add_argument("--pool", default=settings.WORKER_POOL, help="pool slug")
        parser.add_argument(
            "--slots",
            type=int,
            default=settings.WORKER_SLOTS,
            help="slots to offer (default: the pool's slots_per_worker)",
        )
        parser.add_argument(
            "--wait-for-pool",
            type=float,
            default=0.0,
            help="seconds to wait for the pool to be created (a first install's migrate job)",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.WORKER_METRICS_PORT,
            help="port of this worker's /healthz, /readyz and /metrics (0: none)",
        )
        parser.add_argument(
            "--runtime",
            default=settings.WORKER_RUNTIME,
            help="dotted path of the WorldRuntime class (default: the engine "
            "for a pool with a checkpoint, else the placeholder)",
        )

    def handle(self, *args, **options):
        start_if_embedded()  # a worker started on its own, on the embedded defaults
        pool = self._pool(options["pool"], options["wait_for_pool"])
        if pool is None:
            known = ", ".join(GpuPool.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"no pool with slug {options['pool']!r} (known: {known})")
        slots = options["slots"] or pool.slots_per_worker
        if slots < 1:
            raise CommandError("--slots must be at least 1")
        if not 0 <= options["metrics_port"] <= 65535:
            raise CommandError("--metrics-port must be a port number (0: none)")
        runtime = options["runtime"] or (ENGINE_RUNTIME if pool.checkpoint else PLACEHOLDER_RUNTIME)
        process = WorkerProcess(
            pool, slots, runtime, version=__version__, metrics_port=options["metrics_port"]
        )
        worker = process.start()

        def shutting_down(how: str = "Warm", **_) -> None:
            # Celery's warm shutdown (the first SIGTERM or Ctrl-C) waits for the running
            # session tasks: drain, so they play on up to WORKER_DRAIN_SECONDS. A cold one
            # (a second signal, SIGQUIT) ends them now.
            if how == "Warm":
                process.drain(settings.WORKER_DRAIN_SECONDS, exits=True)
            else:
                process.shutting_down.set()

        worker_shutting_down.connect(shutting_down, weak=False)
        self.stdout.write(f"worker {worker.public_id} serving {slots} slot(s) of {pool.slug}")
        try:
            celery_app.worker_main(
                [
                    "worker",
                    "--queues",
                    worker.queue_name,
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(slots),
                    "--hostname",
                    f"gpu-{worker.public_id}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ]
            )
        finally:
            process.stop()

    def _pool(self, slug: str, wait: float) -> GpuPool | None:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            pool = GpuPool.objects.filter(slug=slug).first()
            if pool is not None or time.monotonic() >= deadline:
                return pool
            logger.info("pool %s does not exist yet; waiting", slug)
            time.sleep(POOL_POLL_SECONDS)
