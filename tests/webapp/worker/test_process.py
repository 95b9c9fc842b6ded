"""How many CPU threads a worker gives its model, and which thread talks to the model."""

from __future__ import annotations

import os
import threading

import pytest
from django.conf import settings

from inference.placeholder import PlaceholderRuntime
from inference.process_runtime import ProcessRuntime
from webapp.fleet.models import GpuPool
from webapp.worker.process import WorkerProcess, cpu_threads


class OptionsNotingRuntime(PlaceholderRuntime):
    """The placeholder, noting the options it was built with and the thread that built it."""

    built: list[tuple[dict, int]] = []

    def __init__(self, **options):
        super().__init__(**options)
        type(self).built.append((options, threading.get_ident()))


def test_an_unset_thread_count_leaves_one_core_for_streaming_and_the_browser():
    assert cpu_threads(0, cores=2) == 1
    assert cpu_threads(0, cores=16) == 15
    assert cpu_threads(0, cores=1) == 1


def test_a_configured_thread_count_wins():
    assert cpu_threads(3, cores=2) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("device, threads", [(GpuPool.Device.CPU, 3), (GpuPool.Device.CUDA, None)])
def test_the_device_loop_thread_builds_the_runtime_with_the_pools_thread_count(
    pool, settings, device, threads
):
    settings.WORKER_CPU_THREADS = 3
    settings.WORKER_MODEL_PROCESS = False  # in this process, where the test can see it
    GpuPool.objects.filter(pk=pool.pk).update(device_kind=device)
    pool.refresh_from_db()
    OptionsNotingRuntime.built.clear()
    process = WorkerProcess(pool, 1, f"{__name__}.OptionsNotingRuntime")
    process.start()
    try:
        [(options, builder)] = OptionsNotingRuntime.built
        assert options.get("threads") == threads
        assert options["device"] == device
        assert builder == process.loop._thread.ident != threading.get_ident()
    finally:
        process.stop()


@pytest.mark.django_db(transaction=True)
def test_by_default_the_model_runs_in_a_child_process_that_ends_with_the_worker(pool):
    assert settings.WORKER_MODEL_PROCESS  # the default this test is about
    process = WorkerProcess(pool, 1, "inference.placeholder.PlaceholderRuntime")
    process.start()
    try:
        assert isinstance(process.runtime, ProcessRuntime)
        child = process.runtime._process
        assert child.is_alive() and child.pid != os.getpid()
        assert process.runtime.action_names == PlaceholderRuntime().action_names
    finally:
        process.stop()
    assert not child.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_model_process_dies_stops_serving(pool, settings, monkeypatch):
    settings.WORKER_MODEL_PROCESS = True
    signals = []
    monkeypatch.setattr(
        "webapp.worker.process._signal_celery_shutdown", lambda: signals.append("SIGTERM")
    )
    process = WorkerProcess(pool, 1, "inference.placeholder.PlaceholderRuntime")
    process.start()
    try:
        assert process.model_is_healthy() and process._beat_once()
        process.runtime._process.kill()
        process.runtime._process.join(5)
        assert not process.model_is_healthy()
        assert not process._beat_once()
        assert process.shutting_down.is_set() and signals == ["SIGTERM"]
    finally:
        process.stop()
