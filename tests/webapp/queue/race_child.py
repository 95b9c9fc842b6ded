"""Run in a separate process: dispatch one pool as fast as possible, report the offers made."""

from __future__ import annotations

import os
import time


def dispatch_in_child(database_name: str, pool_id: int, start_at: float, rounds: int) -> list[int]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django
    from django.conf import settings

    django.setup()
    # Point at the test database before the first connection opens.
    settings.DATABASES["default"]["NAME"] = database_name
    from webapp.fleet.models import GpuPool
    from webapp.queue.dispatch import dispatch_pool

    pool = GpuPool.objects.get(pk=pool_id)
    time.sleep(max(0.0, start_at - time.time()))
    offered: list[int] = []
    for _ in range(rounds):
        offered += [ticket.pk for ticket in dispatch_pool(pool)]
    return offered
