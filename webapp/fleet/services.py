"""Worker lifecycle: announce, heartbeat, drain, stop, and reap the ones that went silent."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp import notify
from webapp.fleet.models import GpuPool, Slot, Worker
from webapp.play.models import PlaySession
from webapp.play.services import end_session
from webapp.queue.dispatch import dispatch_pool
from webapp.queue.services import return_orphaned_offers, return_to_line

logger = logging.getLogger(__name__)


def register_worker(pool: GpuPool, slot_count: int, version: str = "") -> Worker:
    """Announce a worker and its slots; it stays WARMING (offered to nobody) until ready."""
    with transaction.atomic():
        worker = Worker.objects.create(
            pool=pool,
            host=socket.gethostname(),
            pid=os.getpid(),
            slot_count=slot_count,
            version=version,
        )
        Slot.objects.bulk_create(Slot(worker=worker, index=i) for i in range(slot_count))
    logger.info(
        "worker %s registered with %d slots in pool %s", worker.public_id, slot_count, pool.slug
    )
    return worker


def mark_ready(worker: Worker) -> None:
    Worker.objects.filter(pk=worker.pk, state=Worker.State.WARMING).update(
        state=Worker.State.READY, last_heartbeat=timezone.now()
    )
    notify.queue_changed(worker.pool.public_id)
    dispatch_pool(worker.pool)


def heartbeat(worker: Worker) -> bool:
    """Refresh the heartbeat; False when the worker was reaped or stopped and must not go on."""
    alive = Worker.objects.filter(pk=worker.pk).exclude(
        state__in=[Worker.State.LOST, Worker.State.STOPPED]
    )
    return alive.update(last_heartbeat=timezone.now()) == 1


def set_draining(worker: Worker, draining: bool) -> None:
    """A draining worker finishes its sessions and takes no new ones."""
    source, target = (
        (Worker.State.READY, Worker.State.DRAINING)
        if draining
        else (Worker.State.DRAINING, Worker.State.READY)
    )
    Worker.objects.filter(pk=worker.pk, state=source).update(state=target)
    if draining:
        _return_offers(Slot.objects.filter(worker=worker))
    notify.queue_changed(worker.pool.public_id)
    if not draining:
        dispatch_pool(worker.pool)


def _return_offers(slots) -> None:
    """Tickets offered on these slots go back to waiting, keeping their place in line."""
    for slot in slots.filter(ticket__isnull=False).select_related("ticket__pool"):
        return_to_line(slot.ticket)


def retire_worker(worker: Worker, state: str, reason: str, stale_before=None) -> bool:
    """Mark a worker stopped or lost (once), end its sessions and remove its slots.

    No transaction spans the steps: each takes its rows in the shared order (ticket, then
    slot), so retiring never deadlocks with a confirm. Once the state change commits,
    dispatch and confirm refuse this worker's slots; an offer that raced in just before is
    returned to the line by the orphan sweep after the slots are gone.
    """
    claim = Worker.objects.filter(pk=worker.pk).exclude(
        state__in=[Worker.State.LOST, Worker.State.STOPPED]
    )
    if stale_before is not None:
        # A heartbeat that landed since the reaper looked saves the worker.
        claim = claim.filter(last_heartbeat__lt=stale_before)
    if claim.update(state=state) != 1:
        return False
    slots = Slot.objects.filter(worker=worker)
    _return_offers(slots)
    for session in PlaySession.objects.filter(worker=worker, state__in=PlaySession.LIVE_STATES):
        end_session(session, reason)
    slots.delete()
    return_orphaned_offers()
    logger.warning("worker %s retired as %s", worker.public_id, state)
    notify.queue_changed(worker.pool.public_id)
    dispatch_pool(worker.pool)
    return True


def reap_workers(now=None) -> list[Worker]:
    """Retire workers whose heartbeat is older than WORKER_TIMEOUT; their players are told."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_TIMEOUT)
    silent = Worker.objects.filter(last_heartbeat__lt=cutoff).exclude(
        state__in=[Worker.State.LOST, Worker.State.STOPPED]
    )
    return [
        w
        for w in silent
        if retire_worker(
            w, Worker.State.LOST, PlaySession.EndReason.WORKER_LOST, stale_before=cutoff
        )
    ]


def set_pool_state(
    pool: GpuPool, *, enabled: bool | None = None, draining: bool | None = None
) -> None:
    update = {}
    if enabled is not None:
        update["enabled"] = enabled
    if draining is not None:
        update["draining"] = draining
    GpuPool.objects.filter(pk=pool.pk).update(**update)
    pool.refresh_from_db()
    if not pool.accepts_players():
        _return_offers(Slot.objects.filter(worker__pool=pool))
    notify.queue_changed(pool.public_id)
    if pool.accepts_players():
        dispatch_pool(pool)
