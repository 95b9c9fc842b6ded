"""Starting and ending play sessions; every end frees the slot and records why."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp import notify
from webapp.celery import app as celery_app
from webapp.fleet.models import Slot, Worker
from webapp.play import limits
from webapp.play.models import PlaySession, front_pass_deadline
from webapp.queue.dispatch import dispatch_pool
from webapp.queue.models import Ticket
from webapp.queue.services import end_ticket, return_to_line

logger = logging.getLogger(__name__)

# The task a GPU worker runs a session in (webapp/worker/tasks.py). Enqueued by name, so the web
# tier never imports the worker tier, and only a worker's own queue ever carries it.
SESSION_TASK = "webapp.worker.tasks.run_play_session"


class ConfirmError(Exception):
    """The offer can no longer be taken; the message is shown to the player."""


class _SlotGone(Exception):
    """The reserved slot vanished (its worker was reaped) between offer and confirm."""


def confirm(ticket: Ticket) -> PlaySession:
    """Turn an offered ticket into a session on its reserved slot and hand it to that worker.

    Locks in the order every other path uses, ticket then slot, so confirm can neither deadlock
    with a drain or the reaper nor start a session on a slot that was taken back.
    """
    try:
        allowed = limits.remaining_seconds(ticket.user)
    except limits.LimitReached as exc:
        end_ticket(ticket, Ticket.State.REFUSED)
        raise ConfirmError(str(exc)) from exc
    now = timezone.now()
    try:
        with transaction.atomic():
            taken = Ticket.objects.filter(
                pk=ticket.pk, state=Ticket.State.OFFERED, offer_expires_at__gte=now
            ).update(state=Ticket.State.CONFIRMED, ended_at=now)
            if taken != 1:
                raise ConfirmError(_why_not_offered(ticket))
            session = _start_on_reserved_slot(ticket, allowed)
    except _SlotGone:
        return_to_line(ticket)
        raise ConfirmError(
            "Your slot went away with its worker; you keep your place in line."
        ) from None
    return session


def _why_not_offered(ticket: Ticket) -> str:
    ticket.refresh_from_db()
    if ticket.state == Ticket.State.WAITING:
        return "That slot was withdrawn; you keep your place in line."
    return "This offer has expired; join the queue again."


def _start_on_reserved_slot(ticket: Ticket, allowed: float) -> PlaySession:
    live_worker = [Worker.State.READY, Worker.State.DRAINING]
    slot = (
        Slot.objects.select_for_update(of=("self",))
        .select_related("worker")
        .filter(ticket=ticket, worker__state__in=live_worker)
        .first()
    )
    if slot is None:
        raise _SlotGone
    session = PlaySession.objects.create(
        user=ticket.user,
        world=ticket.world,
        pool=ticket.pool,
        worker=slot.worker,
        ticket=ticket,
        slot_index=slot.index,
        allowed_seconds=int(min(ticket.pool.session_seconds, allowed)),
    )
    if Slot.objects.filter(pk=slot.pk, ticket=ticket).update(ticket=None, session=session) != 1:
        raise _SlotGone
    queue_name = slot.worker.queue_name
    logger.info("session %s confirmed on %s", session.public_id, queue_name)
    notify.queue_changed(ticket.pool.public_id)
    transaction.on_commit(
        lambda: celery_app.send_task(SESSION_TASK, args=[str(session.public_id)], queue=queue_name),
        robust=True,
    )
    return session


def end_session(session: PlaySession, reason: str) -> bool:
    """End a live session once, free its slot, tell the player; False if it had already ended."""
    now = timezone.now()
    fields = {"state": PlaySession.State.ENDED, "ended_at": now, "end_reason": reason}
    if reason in (PlaySession.EndReason.WORKER_LOST, PlaySession.EndReason.WORKER_SHUTDOWN):
        # The player did nothing wrong: they rejoin ahead of everyone.
        fields["front_pass_until"] = front_pass_deadline()
    with transaction.atomic():
        changed = PlaySession.objects.filter(
            pk=session.pk, state__in=PlaySession.LIVE_STATES
        ).update(**fields)
        if changed != 1:
            return False
        Slot.objects.filter(session=session).update(session=None)
        session.refresh_from_db()
        logger.info("session %s ended: %s", session.public_id, reason)
        notify.send(
            notify.session_group(session.public_id),
            "session.ended",
            reason=reason,
            label=session.get_end_reason_display(),
            front_pass=session.has_front_pass(now),
        )
        pool = session.pool
        transaction.on_commit(lambda: dispatch_pool(pool), robust=True)
    return True


def record_input(session: PlaySession) -> None:
    PlaySession.objects.filter(pk=session.pk, state__in=PlaySession.LIVE_STATES).update(
        last_input_at=timezone.now()
    )


def record_connection(session: PlaySession, connected: bool) -> None:
    """Count the player's open pages; when the last one goes, the grace period starts."""
    live = PlaySession.objects.filter(pk=session.pk, state__in=PlaySession.LIVE_STATES)
    if connected:
        live.update(client_connections=F("client_connections") + 1, disconnected_at=None)
        return
    live.filter(client_connections__gt=0).update(client_connections=F("client_connections") - 1)
    live.filter(client_connections=0).update(disconnected_at=timezone.now())
