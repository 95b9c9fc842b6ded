from __future__ import annotations

from celery import shared_task

from webapp.fleet import services


@shared_task(ignore_result=True)
def reap_workers() -> int:
    """Retire workers whose heartbeat went silent; their players are told at once."""
    return len(services.reap_workers())
