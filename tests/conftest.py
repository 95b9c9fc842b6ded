"""Shared fixtures: a pool with a live worker, worlds, and an owner and an outsider."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from webapp.fleet import services as fleet_services
from webapp.fleet.models import GpuPool, Worker
from webapp.worlds.models import PromptImage, World
from webapp.worlds.placeholders import placeholder_image, png_bytes


def pytest_unconfigure(config):
    # The embedded Redis (no REDIS_URL) daemonises; the run that started it stops it, so no
    # redis-server outlives the suite. One that was already running is left alone.
    from django.conf import settings

    from webapp.embedded_redis import started_here, stop_embedded_redis

    if started_here(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT):
        stop_embedded_redis(settings.EMBEDDED_REDIS_DIR, settings.EMBEDDED_REDIS_PORT)


@pytest.fixture(scope="session", autouse=True)
def _embedded_redis():
    # On the embedded defaults (no REDIS_URL) the suite starts the Redis it talks to.
    from webapp.embedded_redis import start_if_embedded

    start_if_embedded()


@pytest.fixture(autouse=True)
def _clear_rate_limits(_embedded_redis):
    # Rate-limit counters live in the shared cache (Redis); each test starts with none.
    cache.clear()


@pytest.fixture(autouse=True)
def _clear_queue_snapshots():
    # Each process keeps its pools' last queue snapshot; primary keys repeat between tests.
    from webapp.queue.snapshot import snapshots

    snapshots.clear()


@pytest.fixture
def pool(db):
    return GpuPool.objects.create(
        name="Test pool",
        slug="test",
        slots_per_worker=1,
        session_seconds=300,
        idle_seconds=60,
        idle_warning_seconds=15,
        disconnect_grace_seconds=20,
    )


def make_world(pool, slug="coast", name="Coast"):
    image = placeholder_image(slug)
    world = World.objects.create(name=name, slug=slug, pool=pool, thumbnail_png=png_bytes(image))
    PromptImage.objects.create(world=world, index=0, png=png_bytes(image))
    return world


@pytest.fixture
def world(pool):
    return make_world(pool)


def make_worker(pool, slots=1, ready=True) -> Worker:
    worker = fleet_services.register_worker(pool, slots, version="test")
    if ready:
        Worker.objects.filter(pk=worker.pk).update(
            state=Worker.State.READY, last_heartbeat=timezone.now()
        )
        worker.refresh_from_db()
    return worker


@pytest.fixture
def make_user(django_user_model):
    counter = iter(range(10_000))

    def _make(username=None, password="correct horse battery staple"):
        name = username or f"player{next(counter)}"
        return django_user_model.objects.create_user(username=name, password=password)

    return _make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def prompt():
    return np.zeros((1, 64, 64, 3), dtype=np.uint8)


def confirmed_session(world, user, worker=None):
    """Put the player straight onto a slot (a new single-slot worker unless one is given)."""
    from webapp.play.services import confirm
    from webapp.queue import services

    if worker is None:
        make_worker(world.pool, slots=1)
    ticket = services.join(user, world)
    ticket.refresh_from_db()
    return confirm(ticket)
