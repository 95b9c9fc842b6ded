"""Dispatch: hand free slots to the next tickets, safely from any number of processes.

A slot is claimed with a conditional UPDATE that must change exactly one row (the slot still
free), and the ticket with another (the ticket still waiting); both run in one transaction, so
a dispatcher that loses either race rolls back and leaves the slot to the winner. On PostgreSQL
candidate slots are read with FOR UPDATE SKIP LOCKED so racing dispatchers pick different ones.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from webapp import notify
from webapp.fleet.models import GpuPool, Slot, Worker
from webapp.queue.models import Ticket
from webapp.queue.ordering import next_in_line

logger = logging.getLogger(__name__)


class LostRace(Exception):
    """Another dispatcher claimed the slot or the ticket first."""


def _free_slot(pool: GpuPool) -> Slot | None:
    slots = pool.live_slots().filter(ticket__isnull=True, session__isnull=True).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        slots = slots.select_for_update(skip_locked=True, of=("self",))
    return slots.first()


def _offer_one(pool: GpuPool) -> Ticket | None:
    """Reserve one free slot for the next ticket; None when no slot or no ticket is left."""
    now = timezone.now()
    with transaction.atomic():
        slot = _free_slot(pool)
        if slot is None:
            return None
        ticket_id = next_in_line(pool)
        if ticket_id is None:
            return None
        # The worker must still be ready as this statement runs: a reaper or drain that
        # committed since the slot was read wins, and this dispatcher loses the race.
        claimed = Slot.objects.filter(
            pk=slot.pk, ticket__isnull=True, session__isnull=True, worker__state=Worker.State.READY
        )
        if claimed.update(ticket_id=ticket_id) != 1:
            raise LostRace
        offered = Ticket.objects.filter(pk=ticket_id, state=Ticket.State.WAITING).update(
            state=Ticket.State.OFFERED,
            offered_at=now,
            offer_expires_at=now + timedelta(seconds=settings.QUEUE_CONFIRM_SECONDS),
        )
        if offered != 1:
            raise LostRace
        ticket = Ticket.objects.get(pk=ticket_id)
        logger.info("offered slot %s to ticket %s", slot.pk, ticket.public_id)
        notify.send(notify.ticket_group(ticket.public_id), "ticket.changed", change="offered")
        notify.queue_changed(pool.public_id)
        return ticket


def dispatch_pool(pool: GpuPool) -> list[Ticket]:
    """Offer every free slot of the pool to the next waiting tickets; returns the offers made."""
    pool.refresh_from_db()
    if not pool.accepts_players():
        return []
    offers: list[Ticket] = []
    # Each lost race means another dispatcher made progress, so the loop is bounded by the
    # number of slots and tickets in play; the cap only guards against a logic error.
    for _ in range(1000):
        try:
            ticket = _offer_one(pool)
        except (LostRace, IntegrityError):
            continue
        if ticket is None:
            break
        offers.append(ticket)
    return offers


def dispatch_all() -> int:
    return sum(len(dispatch_pool(pool)) for pool in GpuPool.objects.filter(enabled=True))
