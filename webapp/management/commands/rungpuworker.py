"""Run a GPU worker: announce slots for one pool, warm the model, serve its sessions."""

from __future__ import annotations

import logging

from celery.signals import worker_shutting_down
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp import __version__
from webapp.celery import app as celery_app
from webapp.fleet.models import GpuPool
from webapp.worker import tasks  # noqa: F401  (registers the session task with this worker)
from webapp.worker.process import WorkerProcess

logger = logging.getLogger(__name__)

ENGINE_RUNTIME = "inference.engine_runtime.EngineRuntime"
PLACEHOLDER_RUNTIME = "inference.placeholder.PlaceholderRuntime"


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
            "--runtime",
            default=settings.WORKER_RUNTIME,
            help="dotted path of the WorldRuntime class (default: the engine "
            "for a pool with a checkpoint, else the placeholder)",
        )

    def handle(self, *args, **options):
        pool = GpuPool.objects.filter(slug=options["pool"]).first()
        if pool is None:
            known = ", ".join(GpuPool.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"no pool with slug {options['pool']!r} (known: {known})")
        slots = options["slots"] or pool.slots_per_worker
        if slots < 1:
            raise CommandError("--slots must be at least 1")
        runtime = options["runtime"] or (ENGINE_RUNTIME if pool.checkpoint else PLACEHOLDER_RUNTIME)
        process = WorkerProcess(pool, slots, runtime, version=__version__)
        worker = process.start()
        worker_shutting_down.connect(lambda **_: process.shutting_down.set(), weak=False)
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
