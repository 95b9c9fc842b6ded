from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from streaming.turn import ice_server_dicts
from webapp.play import services
from webapp.play.models import PlaySession


def _own_session(request, session_id) -> PlaySession:
    return get_object_or_404(
        PlaySession.objects.select_related("world", "pool"), public_id=session_id, user=request.user
    )


@login_required
@require_GET
def session_page(request, session_id):
    session = _own_session(request, session_id)
    # The page's peer connection uses the same STUN/TURN servers as the worker (none unless
    # set), with TURN credentials of its own that expire (streaming/turn.py).
    ice_servers = ice_server_dicts(str(session.public_id))
    return render(request, "play/session.html", {"session": session, "ice_servers": ice_servers})


@login_required
@require_POST
def leave(request, session_id):
    session = _own_session(request, session_id)
    if services.end_session(session, PlaySession.EndReason.LEFT):
        messages.info(request, "You left the session.")
    return redirect("play-session", session_id=session.public_id)
