"""The GPU worker process: announce, warm the model, heartbeat, serve only its own slots.

`rungpuworker` builds one `WorkerProcess`, then runs a Celery worker that consumes only the queue
named after this worker, with one thread per slot; session tasks (webapp/worker/tasks.py) find
the process through `current()`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from inference.process_runtime import ProcessRuntime
from inference.runtime import WorldRuntime, load_runtime
from streaming import metrics
from streaming.peer import StreamingLoop
from webapp import logcontext
from webapp.fleet import services
from webapp.fleet.models import GpuPool, Worker
from webapp.play.models import PlaySession
from webapp.worker import observe
from webapp.worker.device_loop import DeviceLoop

logger = logging.getLogger(__name__)

_current: WorkerProcess | None = None


def cpu_threads(configured: int, cores: int | None = None) -> int:
    """The configured thread count, or (0) every core this process may use but one."""
    if configured > 0:
        return configured
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    return max(1, cores - 1)


def current() -> WorkerProcess | None:
    """The worker process this Celery worker serves, or None in a control worker."""
    return _current


class WorkerProcess:
    """Owns the Worker row, the runtime, the device loop, the streaming loop and the heartbeat.

    Threads: the device loop steps the runtime; the streaming loop (asyncio) runs every peer
    connection and signalling listener; one Celery thread per slot supervises a session.
    """

    def __init__(
        self,
        pool: GpuPool,
        slot_count: int,
        runtime_path: str,
        version: str = "",
        metrics_port: int = 0,
    ):
        self.pool = pool
        self.slot_count = slot_count
        self.runtime_path = runtime_path
        self.version = version
        self.metrics_port = metrics_port
        self.observer: observe.ObserveServer | None = None
        # warming -> ready -> (draining <-> ready) -> stopping; /readyz and the runners read it.
        self.state = "warming"
        # monotonic time at which a drain ends the sessions still playing; None: not draining
        self.drain_deadline: float | None = None
        self.drain_exits = False  # a SIGTERM drain, as against an operator's drain from admin
        self.worker: Worker | None = None
        self.runtime: WorldRuntime | None = None
        self.loop: DeviceLoop | None = None
        self.streaming: StreamingLoop | None = None
        self.shutting_down = threading.Event()
        self._heartbeat_thread = threading.Thread(
            target=self._beat, name="worker-heartbeat", daemon=True
        )

    def start(self) -> Worker:
        """Register (WARMING), load and warm the model, then become READY."""
        global _current
        if self.metrics_port:
            # First, so that a liveness probe has its answer while the model loads.
            self.observer = observe.ObserveServer(
                settings.WORKER_METRICS_ADDRESS, self.metrics_port, self.readiness
            )
            self.observer.start()
        self.worker = services.register_worker(self.pool, self.slot_count, self.version)
        metrics.bind(self.pool.slug, str(self.worker.public_id))
        logcontext.bind_worker(self.worker.public_id)
        observe.report_slots_of(self.worker.pk)
        self._heartbeat_thread.start()
        # The device loop's thread loads and warms the model: it is the only thread that may
        # call into it (see DeviceLoop).
        self.loop = DeviceLoop(
            None,
            self.pool.frame_rate,
            build=self._build_runtime,
            early_ticks=settings.WORKER_EARLY_TICKS,
        )
        self.loop.start()
        self.runtime = self.loop.runtime
        self.streaming = StreamingLoop()
        self.streaming.start()
        _current = self
        services.mark_ready(self.worker)
        self.state = "ready"
        logger.info("worker %s ready on queue %s", self.worker.public_id, self.worker.queue_name)
        return self.worker

    def serving(self) -> tuple[WorldRuntime, DeviceLoop, StreamingLoop]:
        """What a session runs on: the runtime, the device loop and the streaming loop."""
        if self.runtime is None or self.loop is None or self.streaming is None:
            raise RuntimeError("the worker process has not started")
        return self.runtime, self.loop, self.streaming

    def _build_runtime(self) -> WorldRuntime:
        # Plain strings and numbers: the options travel to the model process (no Django there).
        checkpoint = self.pool.checkpoint_path() or settings.DEFAULT_CHECKPOINT
        options: dict[str, Any] = {
            "checkpoint": str(checkpoint),
            "device": str(self.pool.device_kind),
        }
        if self.pool.device_kind == GpuPool.Device.CPU:
            options["threads"] = cpu_threads(settings.WORKER_CPU_THREADS)
        runtime: WorldRuntime
        if settings.WORKER_MODEL_PROCESS:
            runtime = ProcessRuntime(self.runtime_path, **options)
        else:
            runtime = load_runtime(self.runtime_path, **options)
        try:
            runtime.warm()
        except BaseException:
            runtime.close()  # no model process outlives a failed start
            raise
        return runtime

    def model_is_healthy(self) -> bool:
        """False once the device loop or the model process behind it has died."""
        if self.loop is None:
            return True  # still starting
        return self.loop.is_alive() and (self.runtime is None or self.runtime.is_alive())

    def readiness(self) -> tuple[bool, str]:
        """Whether this worker takes players now, and its state in a word (for /readyz)."""
        if self.shutting_down.is_set():
            return False, "stopping"
        if self.state == "ready" and not self.model_is_healthy():
            return False, "model lost"
        return self.state == "ready", self.state

    def drain(self, seconds: float, exits: bool) -> None:
        """Take no new players; sessions play on for at most `seconds`, then end as a
        worker shutdown (`drain_expired`). `exits`: SIGTERM's drain, which ends in `stop`."""
        if self.drain_deadline is None:
            self.drain_deadline = time.monotonic() + max(0.0, seconds)
            logger.info("worker draining: sessions end within %.0f s", seconds)
        self.drain_exits = self.drain_exits or exits
        self.state = "draining"
        metrics.draining(True)
        if self.worker is not None and exits:
            services.set_draining(self.worker, True)

    def undrain(self) -> None:
        """An operator took the drain back (admin's "enable"): take players again."""
        if self.drain_exits or self.drain_deadline is None:
            return
        self.drain_deadline = None
        self.state = "ready"
        metrics.draining(False)
        logger.info("worker takes players again")

    def drain_expired(self) -> bool:
        return self.drain_deadline is not None and time.monotonic() >= self.drain_deadline

    def stop(self) -> None:
        """End every session as a worker shutdown, tell the players, remove the slots."""
        global _current
        self.state = "stopping"
        self.shutting_down.set()
        if self.worker is not None:
            services.retire_worker(
                self.worker, Worker.State.STOPPED, PlaySession.EndReason.WORKER_SHUTDOWN
            )
        if self.loop is not None:
            self.loop.shutdown()
        if self.streaming is not None:
            # Runners close their own peers as their sessions end; this catches the rest.
            self.streaming.shutdown()
        if self._heartbeat_thread.is_alive():
            self._heartbeat_thread.join(timeout=5)
        if self.observer is not None:
            self.observer.stop()
        _current = None

    def _beat(self) -> None:
        try:
            while not self.shutting_down.wait(settings.WORKER_HEARTBEAT_SECONDS):
                if not self._beat_once():
                    return
                close_old_connections()
        finally:
            connection.close()  # this thread's own connection

    def _beat_once(self) -> bool:
        assert self.worker is not None  # the heartbeat starts after registering
        if not self.model_is_healthy() and not self.shutting_down.is_set():
            # Every session here would fail from now on: stop offering the slots; players get
            # the worker-shutdown treatment (told at once, front of the queue).
            logger.error("worker %s: its model is gone; shutting down", self.worker.public_id)
            self.shutting_down.set()
            _signal_celery_shutdown()
            return False
        try:
            alive = services.heartbeat(self.worker)
            if alive:
                self._follow_operator_drain()
        except Exception:
            # A database restart (or any failure) must not end the heartbeat thread: without
            # it the reaper counts this live worker lost.
            logger.exception("heartbeat failed; retrying")
            return True
        if not alive:
            # Reaped while alive (e.g. a long stall): its slots are gone, so it must not
            # serve anyone; stop taking work.
            logger.error("worker %s was retired; shutting down", self.worker.public_id)
            self.shutting_down.set()
            _signal_celery_shutdown()
            return False
        return True

    def _follow_operator_drain(self) -> None:
        """Admin's drain is a row state; the sessions here honour its bound too."""
        assert self.worker is not None
        state = Worker.objects.filter(pk=self.worker.pk).values_list("state", flat=True).first()
        if state == Worker.State.DRAINING and self.drain_deadline is None:
            self.drain(settings.WORKER_DRAIN_SECONDS, exits=False)
        elif state == Worker.State.READY and self.state == "draining":
            self.undrain()


def _signal_celery_shutdown() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
