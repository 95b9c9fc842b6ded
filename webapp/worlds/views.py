from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET, require_POST

from webapp.play.models import PlaySession
from webapp.queue.models import Ticket
from webapp.queue.services import active_ticket
from webapp.worlds.models import World
from webapp.worlds.uploads import UploadWorldForm, create_uploaded_world

# Room for the form's other fields and multipart boundaries around the picture itself.
UPLOAD_FORM_OVERHEAD = 64 * 1024


def _render_lobby(request, upload_form, status=200):
    worlds = list(World.playable_by(request.user).select_related("pool"))
    for world in worlds:
        world.capacity = world.pool.live_slots().count()
        world.waiting = Ticket.objects.filter(pool=world.pool, state=Ticket.State.WAITING).count()
    ticket = active_ticket(request.user) if request.user.is_authenticated else None
    context = {"worlds": worlds, "ticket": ticket, "upload_form": upload_form}
    return render(request, "worlds/lobby.html", context, status=status)


@require_GET
def lobby(request):
    return _render_lobby(request, UploadWorldForm(user=request.user))


@login_required
@require_POST
def upload(request):
    """A player's own picture becomes a private starting world."""
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.WORLD_UPLOAD_MAX_BYTES + UPLOAD_FORM_OVERHEAD:
        # Refused before Django reads the body into a temporary file.
        form = UploadWorldForm(user=request.user)
        form.add_error(
            None, f"The upload is larger than {filesizeformat(settings.WORLD_UPLOAD_MAX_BYTES)}."
        )
        return _render_lobby(request, form, status=413)
    form = UploadWorldForm(request.POST, request.FILES, user=request.user)
    if form.is_valid():
        try:
            world = create_uploaded_world(
                request.user, form.cleaned_data["name"], form.cleaned_data["image"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{world.name} is ready: press Play to start from it.")
            return redirect("worlds-lobby")
    return _render_lobby(request, form, status=400)


@login_required
@require_POST
def remove(request, world_id):
    """Take one of the player's own worlds off their list."""
    world = get_object_or_404(World, public_id=world_id, owner=request.user)
    if (
        world.tickets.filter(state__in=Ticket.ACTIVE_STATES).exists()
        or world.sessions.filter(state__in=PlaySession.LIVE_STATES).exists()
    ):
        messages.error(request, f"{world.name} is in use; leave its queue or session first.")
    elif world.sessions.exists():
        # Past sessions keep pointing at it; it just stops being the player's.
        World.objects.filter(pk=world.pk).update(owner=None)
        messages.info(request, f"Removed {world.name}.")
    else:
        world.delete()
        messages.info(request, f"Removed {world.name}.")
    return redirect("worlds-lobby")


@require_GET
def thumbnail(request, world_id):
    world = get_object_or_404(World.playable_by(request.user), public_id=world_id)
    etag = f'"{world.thumbnail_etag()}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    response = HttpResponse(bytes(world.thumbnail_png), content_type="image/png")
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=300"
    return response
