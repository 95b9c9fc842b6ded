"""The Celery app: control tasks (dispatch, reaper) and per-worker play-session queues."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("reverie")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _start_embedded_redis(**kwargs) -> None:
    # A Celery process started on its own with no REDIS_URL (runservice passes its children
    # the URL of the one it started).
    from webapp.embedded_redis import start_if_embedded

    start_if_embedded()


# Only the beat process acts on this (celery.signals.beat_init): one beat runs at a time.
import webapp.beat_lock  # noqa: E402,F401
