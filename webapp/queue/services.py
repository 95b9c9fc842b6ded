"""Queue operations: join, leave, heartbeat, and the status a waiting page shows."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp import notify
from webapp.fleet.models import GpuPool, Slot
from webapp.play import limits
from webapp.play.models import PlaySession
from webapp.queue.dispatch import dispatch_pool
from webapp.queue.models import Ticket
from webapp.queue.snapshot import Place, PoolSnapshot, snapshots

logger = logging.getLogger(__name__)


class QueueError(Exception):
    """A queue action that cannot be done; the message is shown to the player."""


@dataclass
class TicketStatus:
    ticket: str
    state: str
    position: int | None
    waiting: int
    estimated_wait: float | None
    offer_seconds_left: float | None
    capacity: int
    session: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def active_ticket(user) -> Ticket | None:
    return Ticket.objects.filter(user=user, state__in=Ticket.ACTIVE_STATES).first()


def join(user, world, front_pass_session: PlaySession | None = None) -> Ticket:
    """Put the player in the world's pool queue; a player holds at most one active ticket.

    A valid front pass (the player's session died with its worker) puts the ticket first,
    or moves the player's existing ticket for that world to the front.
    """
    pool = GpuPool.objects.get(pk=world.pool_id)  # fresh: an operator may have just drained it
    if not pool.accepts_players():
        raise QueueError(f"{world.name} is not taking players right now.")
    existing = active_ticket(user)
    if existing is not None and existing.world_id != world.id:
        raise QueueError("You are already queued for another world; leave that queue first.")
    if existing is None:
        if PlaySession.objects.filter(user=user, state__in=PlaySession.LIVE_STATES).exists():
            raise QueueError("You already have a session running.")
        limits.check_allowance(user)
    try:
        with transaction.atomic():
            front = front_pass_session is not None and _use_front_pass(user, front_pass_session)
            if existing is not None:
                if front:
                    Ticket.objects.filter(pk=existing.pk).update(front=True)
                ticket = existing
            else:
                ticket = Ticket.objects.create(
                    user=user, world=world, pool=pool, tier=user.policy().tier, front=front
                )
    except IntegrityError:
        # Two tabs raced to join: the other one's ticket stands (and the pass was not spent).
        existing = active_ticket(user)
        if existing is None:
            raise
        return existing
    logger.info("ticket %s joined pool %s (front=%s)", ticket.public_id, pool.slug, front)
    notify.queue_changed(pool.public_id)
    transaction.on_commit(lambda: dispatch_pool(pool), robust=True)
    ticket.refresh_from_db()
    return ticket


def _use_front_pass(user, session: PlaySession) -> bool:
    if session.user_id != user.id:
        return False
    used = PlaySession.objects.filter(
        pk=session.pk, front_pass_used=False, front_pass_until__gt=timezone.now()
    ).update(front_pass_used=True)
    return used == 1


def leave(ticket: Ticket) -> bool:
    """Take the ticket out of the queue (and give back a reserved slot); False if already gone."""
    return end_ticket(ticket, Ticket.State.LEFT)


def end_ticket(ticket: Ticket, state: str) -> bool:
    """End an active ticket once (ticket row first, then its slot) and give the slot on."""
    with transaction.atomic():
        changed = Ticket.objects.filter(pk=ticket.pk, state__in=Ticket.ACTIVE_STATES).update(
            state=state, ended_at=timezone.now()
        )
        if changed != 1:
            return False
        released = Slot.objects.filter(ticket=ticket).update(ticket=None)
        ticket.state = state
        logger.info("ticket %s ended: %s", ticket.public_id, state)
        notify.send(notify.ticket_group(ticket.public_id), "ticket.changed", change=state)
        notify.queue_changed(ticket.pool.public_id)
        if released:
            transaction.on_commit(lambda: dispatch_pool(ticket.pool), robust=True)
    return True


def return_to_line(ticket: Ticket) -> bool:
    """Take an offer back (drain, lost worker): the ticket waits again in its old place."""
    with transaction.atomic():
        returned = Ticket.objects.filter(pk=ticket.pk, state=Ticket.State.OFFERED).update(
            state=Ticket.State.WAITING, offered_at=None, offer_expires_at=None
        )
        if returned != 1:
            return False
        Slot.objects.filter(ticket=ticket).update(ticket=None)
        logger.info("ticket %s returned to the line", ticket.public_id)
        notify.send(notify.ticket_group(ticket.public_id), "ticket.changed", change="returned")
        notify.queue_changed(ticket.pool.public_id)
    return True


def return_orphaned_offers() -> int:
    """Offers whose slot was deleted with a reaped worker go back to waiting."""
    orphans = Ticket.objects.filter(state=Ticket.State.OFFERED, reserved_slot__isnull=True)
    return sum(return_to_line(ticket) for ticket in orphans.select_related("pool"))


def heartbeat(ticket: Ticket) -> None:
    Ticket.objects.filter(pk=ticket.pk, state__in=Ticket.ACTIVE_STATES).update(
        last_seen=timezone.now()
    )


def status(
    ticket: Ticket, snapshot: PoolSnapshot | None = None, row_fresh: bool = False
) -> TicketStatus:
    """What the queue page shows. A waiting ticket's place comes from the pool's snapshot (a
    fresh one when none is given). The ticket's row is read unless `row_fresh` says the caller
    just read it, and only when the snapshot lacks the ticket or the row says it left the line.
    """
    if snapshot is not None and (not row_fresh or ticket.state == Ticket.State.WAITING):
        place = snapshot.places.get(ticket.id)
        if place is not None:
            return _waiting_status(ticket, place, snapshot)
    if not row_fresh:
        ticket.refresh_from_db()
    if snapshot is None or ticket.state == Ticket.State.WAITING:
        # Waiting but missing: the snapshot predates the ticket (or its return to the line).
        snapshot = snapshots.refresh(ticket.pool)
        place = snapshot.places.get(ticket.id)
        if place is not None:
            return _waiting_status(ticket, place, snapshot)
    offer_left = None
    if ticket.state == Ticket.State.OFFERED and ticket.offer_expires_at:
        offer_left = max(0.0, (ticket.offer_expires_at - timezone.now()).total_seconds())
    sessions = PlaySession.objects.filter(ticket=ticket)
    session = sessions.values_list("public_id", flat=True).first()
    return TicketStatus(
        ticket=str(ticket.public_id),
        state=ticket.state,
        position=None,
        waiting=snapshot.waiting,
        estimated_wait=None,
        offer_seconds_left=None if offer_left is None else round(offer_left, 1),
        capacity=snapshot.capacity,
        session=str(session) if session else None,
    )


def _waiting_status(ticket: Ticket, place: Place, snapshot: PoolSnapshot) -> TicketStatus:
    return TicketStatus(
        ticket=str(ticket.public_id),
        state=Ticket.State.WAITING,
        position=place.position,
        waiting=snapshot.waiting,
        estimated_wait=place.estimated_wait,
        offer_seconds_left=None,
        capacity=snapshot.capacity,
        session=None,
    )


def expire_offers(now=None) -> int:
    """Drop offered tickets whose confirm window passed; their slots go to the next player."""
    now = now or timezone.now()
    count = 0
    for ticket in Ticket.objects.filter(state=Ticket.State.OFFERED, offer_expires_at__lt=now):
        count += end_ticket(ticket, Ticket.State.EXPIRED)
    return count


def drop_gone_browsers(now=None) -> int:
    """Drop tickets whose page stopped heartbeating; a reload within the timeout keeps them."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.QUEUE_HEARTBEAT_TIMEOUT)
    count = 0
    for ticket in Ticket.objects.filter(state__in=Ticket.ACTIVE_STATES, last_seen__lt=cutoff):
        count += end_ticket(ticket, Ticket.State.DROPPED)
    return count
