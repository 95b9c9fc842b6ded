from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.play.limits import LimitReached
from webapp.play.models import PlaySession
from webapp.play.services import ConfirmError, confirm
from webapp.queue import services
from webapp.queue.models import Ticket
from webapp.worlds.models import World


def _own_ticket(request, ticket_id) -> Ticket:
    return get_object_or_404(
        Ticket.objects.select_related("pool", "world"), public_id=ticket_id, user=request.user
    )


@login_required
@require_POST
def join(request, slug):
    world = get_object_or_404(World.playable_by(request.user), slug=slug)
    try:
        ticket = services.join(request.user, world)
    except (services.QueueError, LimitReached) as exc:
        messages.error(request, str(exc))
        return redirect("worlds-lobby")
    return redirect("queue-ticket", ticket_id=ticket.public_id)


@login_required
@require_POST
def rejoin_front(request, session_id):
    """A player whose worker was lost takes the front of the queue, once."""
    session = get_object_or_404(PlaySession, public_id=session_id, user=request.user)
    try:
        ticket = services.join(request.user, session.world, front_pass_session=session)
    except (services.QueueError, LimitReached) as exc:
        messages.error(request, str(exc))
        return redirect("worlds-lobby")
    return redirect("queue-ticket", ticket_id=ticket.public_id)


@login_required
@require_GET
def ticket_page(request, ticket_id):
    ticket = _own_ticket(request, ticket_id)
    if ticket.state == Ticket.State.CONFIRMED and hasattr(ticket, "session"):
        return redirect("play-session", session_id=ticket.session.public_id)
    # Loading the page is a heartbeat too, so the no-JavaScript page (which refreshes itself)
    # keeps its place.
    services.heartbeat(ticket)
    context = {
        "ticket": ticket,
        "status": services.status(ticket),
        "heartbeat_seconds": settings.QUEUE_HEARTBEAT_SECONDS,
    }
    return render(request, "queue/ticket.html", context)


@login_required
@require_POST
def leave(request, ticket_id):
    ticket = _own_ticket(request, ticket_id)
    if services.leave(ticket):
        messages.info(request, f"You left the queue for {ticket.world.name}.")
    return redirect("worlds-lobby")


@login_required
@require_POST
def confirm_offer(request, ticket_id):
    ticket = _own_ticket(request, ticket_id)
    try:
        session = confirm(ticket)
    except ConfirmError as exc:
        messages.error(request, str(exc))
        return redirect("queue-ticket", ticket_id=ticket.public_id)
    return redirect("play-session", session_id=session.public_id)
