from __future__ import annotations

from django.http import HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from webapp.queue.models import Ticket
from webapp.queue.services import active_ticket
from webapp.worlds.models import World


@require_GET
def lobby(request):
    worlds = list(World.objects.filter(listed=True).select_related("pool"))
    for world in worlds:
        world.capacity = world.pool.live_slots().count()
        world.waiting = Ticket.objects.filter(pool=world.pool, state=Ticket.State.WAITING).count()
    ticket = active_ticket(request.user) if request.user.is_authenticated else None
    return render(request, "worlds/lobby.html", {"worlds": worlds, "ticket": ticket})


@require_GET
def thumbnail(request, world_id):
    world = get_object_or_404(World, public_id=world_id)
    etag = f'"{world.thumbnail_etag()}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    response = HttpResponse(bytes(world.thumbnail_png), content_type="image/png")
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=300"
    return response
