"""The session runner: supervises one play session on the worker that owns its slot.

It claims the session (a redelivered or stale task finds it already claimed and exits), puts it
into the device loop, and checks the server-side limits until the session ends for any reason.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from datetime import timedelta

import numpy as np
from django.db import close_old_connections
from django.utils import timezone
from PIL import Image

from webapp import notify
from webapp.fleet.worker import WorkerProcess
from webapp.play.models import PlaySession
from webapp.play.services import end_session

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.5
# The placeholder picture goes over the websocket; a few per second show life without load.
PREVIEW_PERIOD = 0.5


def claim(session_id: str, process: WorkerProcess) -> PlaySession | None:
    """Move STARTING -> RUNNING on this worker; None when the task is stale or redelivered."""
    now = timezone.now()
    session = PlaySession.objects.filter(public_id=session_id).select_related("pool").first()
    if session is None or session.worker_id != process.worker.pk:
        logger.warning("session %s is not on this worker; ignoring the task", session_id)
        return None
    claimed = PlaySession.objects.filter(
        pk=session.pk, state=PlaySession.State.STARTING, worker=process.worker
    ).update(
        state=PlaySession.State.RUNNING, started_at=now, last_input_at=now,
        deadline=now + timedelta(seconds=session.allowed_seconds),
    )
    if claimed != 1:
        logger.warning("session %s was already claimed (redelivered task); exiting", session_id)
        return None
    session.refresh_from_db()
    return session


def prompt_frames(session: PlaySession) -> np.ndarray:
    """The world's prompt images as uint8 (P,H,W,3)."""
    images = [np.asarray(Image.open(io.BytesIO(bytes(p.png))).convert("RGB"))
              for p in session.world.prompts.all()]
    if not images:
        raise ValueError(f"world {session.world.slug} has no prompt image")
    return np.stack(images)


def end_reason(session: PlaySession, now) -> str | None:
    """Which limit, if any, ends the session now."""
    if session.deadline and now >= session.deadline:
        return PlaySession.EndReason.TIME_UP
    idle_for = (now - (session.last_input_at or session.started_at)).total_seconds()
    if idle_for >= session.pool.idle_seconds:
        return PlaySession.EndReason.IDLE
    if session.client_connections == 0:
        gone_since = session.disconnected_at or session.started_at
        if (now - gone_since).total_seconds() >= session.pool.disconnect_grace_seconds:
            return PlaySession.EndReason.DISCONNECTED
    return None


class PreviewSink:
    """Sends a PNG of the latest frame to the play page a few times a second."""

    def __init__(self, session_id: str):
        self.group = notify.session_group(session_id)
        self.last_sent = 0.0

    def __call__(self, frame: np.ndarray, number: int) -> None:
        now = time.monotonic()
        if now - self.last_sent < PREVIEW_PERIOD:
            return
        self.last_sent = now
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        data = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        notify.send_now(self.group, {"type": "session.frame", "frame": number, "image": data})


def run(session_id: str, process: WorkerProcess) -> str | None:
    """Run the session to its end; returns the end reason this runner recorded, if any."""
    session = claim(session_id, process)
    if session is None:
        return None
    loop = process.loop
    # The page learns its deadline before the first frame arrives.
    notify.send_now(notify.session_group(session_id), {"type": "session.changed"})
    try:
        feed = loop.add(session_id, prompt_frames(session))
    except Exception:
        logger.exception("session %s could not start", session_id)
        end_session(session, PlaySession.EndReason.ERROR)
        return PlaySession.EndReason.ERROR
    feed.sinks.append(PreviewSink(session_id))
    try:
        return _supervise(session, process, feed)
    finally:
        loop.remove(session_id)
        close_old_connections()


def _supervise(session: PlaySession, process: WorkerProcess, feed) -> str | None:
    warned = False
    while True:
        if process.shutting_down.wait(CHECK_SECONDS):
            end_session(session, PlaySession.EndReason.WORKER_SHUTDOWN)
            return PlaySession.EndReason.WORKER_SHUTDOWN
        session.refresh_from_db()
        if not session.is_live:
            return None  # ended elsewhere: the player left or an operator ended it
        now = timezone.now()
        reason = PlaySession.EndReason.ERROR if feed.error else end_reason(session, now)
        if reason:
            end_session(session, reason)
            return reason
        idle_for = (now - session.last_input_at).total_seconds()
        idle_left = session.pool.idle_seconds - idle_for
        if idle_left <= session.pool.idle_warning_seconds and not warned:
            warned = True
            notify.send_now(notify.session_group(session.public_id),
                             {"type": "session.idle_warning", "seconds": round(idle_left)})
        elif idle_left > session.pool.idle_warning_seconds:
            warned = False
