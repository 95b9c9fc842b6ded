"""The session runner: supervises one play session on the worker that owns its slot.

It claims the session (a redelivered or stale task finds it already claimed and exits), opens
its stream (signalling listener; the peer comes with the page's offer), puts it into the device
loop, and checks the server-side limits until the session ends for any reason. Every way out
closes the peer, takes the session out of the runtime and records the end reason.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from PIL import Image

from inference.actions import ActionEncoder
from streaming.signalling import SessionStream
from streaming.tracks import video_scale
from webapp import logcontext, notify
from webapp.play.models import PlaySession
from webapp.play.services import end_session

if TYPE_CHECKING:
    from webapp.worker.device_loop import DeviceLoop
    from webapp.worker.process import WorkerProcess

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.5
# The data channel proves presence 60 times a second; one database write a second is plenty.
INPUT_RECORD_STEP = timedelta(seconds=1)


def claim(session_id: str, process: WorkerProcess) -> PlaySession | None:
    """Move STARTING -> RUNNING on this worker; None when the task is stale or redelivered."""
    now = timezone.now()
    worker = process.worker
    session = PlaySession.objects.filter(public_id=session_id).select_related("pool").first()
    if session is None or worker is None or session.worker_id != worker.pk:
        logger.warning("session %s is not on this worker; ignoring the task", session_id)
        return None
    claimed = PlaySession.objects.filter(
        pk=session.pk, state=PlaySession.State.STARTING, worker=worker
    ).update(
        state=PlaySession.State.RUNNING,
        started_at=now,
        last_input_at=now,
        deadline=now + timedelta(seconds=session.allowed_seconds),
    )
    if claimed != 1:
        logger.warning("session %s was already claimed (redelivered task); exiting", session_id)
        return None
    session.refresh_from_db()
    return session


def prompt_frames(session: PlaySession) -> np.ndarray:
    """The world's prompt images as uint8 (P,H,W,3)."""
    images = [
        np.asarray(Image.open(io.BytesIO(bytes(p.png))).convert("RGB"))
        for p in session.world.prompts.all()
    ]
    if not images:
        raise ValueError(f"world {session.world.slug} has no prompt image")
    return np.stack(images)


def end_reason(
    session: PlaySession,
    now: datetime,
    peer_gone_for: float = 0.0,
    last_input: datetime | None = None,
) -> str | None:
    """Which limit, if any, ends the session at `now`.

    `peer_gone_for`: seconds the player has had no working peer (SessionStream.peer_gone_for);
    `last_input`: the newest input seen on the data channel, newer than the recorded one.
    """
    if session.deadline and now >= session.deadline:
        return PlaySession.EndReason.TIME_UP
    if idle_seconds(session, now, last_input) >= session.pool.idle_seconds:
        return PlaySession.EndReason.IDLE
    if session.client_connections == 0:
        gone_since = session.disconnected_at or session.started_at or now
        if (now - gone_since).total_seconds() >= session.pool.disconnect_grace_seconds:
            return PlaySession.EndReason.DISCONNECTED
    if peer_gone_for >= session.pool.disconnect_grace_seconds:
        # The page may still be open, but without a peer the player sees nothing.
        return PlaySession.EndReason.DISCONNECTED
    return None


def run(session_id: str, process: WorkerProcess) -> str | None:
    """Run the session to its end; returns the end reason this runner recorded, if any."""
    logcontext.bind(session=session_id)
    session = claim(session_id, process)
    if session is None:
        return None
    runtime, loop, streaming = process.serving()
    encoder = ActionEncoder(runtime.action_space, runtime.key_repeat)
    stream = SessionStream(
        streaming,
        session_id,
        runtime.action_space.bindings(),
        codec=session.pool.codec,
        scale=video_scale(runtime.frame_size, settings.WEBRTC_VIDEO_MIN_SIDE),
    )
    try:
        stream.open()
        loop.add(
            session_id,
            prompt_frames(session),
            folder=stream.folder,
            encoder=encoder,
            sinks=(stream.on_frame,),
        )
    except Exception:
        logger.exception("session %s could not start", session_id)
        stream.close()
        loop.remove(session_id)
        end_session(session, PlaySession.EndReason.ERROR)
        return PlaySession.EndReason.ERROR
    # The page offers once it sees "running", and by now the worker listens for that offer.
    notify.send_now(notify.session_group(session_id), {"type": "session.changed"})
    try:
        return _supervise(session, process, loop, stream)
    except Exception:
        logger.exception("session %s: supervising failed", session_id)
        return _end_with_error(session)
    finally:
        stream.close()
        loop.remove(session_id)
        close_old_connections()


def idle_seconds(session: PlaySession, now: datetime, last_input: datetime | None = None) -> float:
    """Seconds since the player last did something (or since the session started)."""
    seen = [t for t in (last_input, session.last_input_at, session.started_at) if t is not None]
    return (now - max(seen)).total_seconds() if seen else 0.0


def _supervise(
    session: PlaySession, process: WorkerProcess, loop: DeviceLoop, stream: SessionStream
) -> str | None:
    warned = False
    unreachable_since: float | None = None
    while True:
        if process.shutting_down.wait(CHECK_SECONDS) or process.drain_expired():
            end_session(session, PlaySession.EndReason.WORKER_SHUTDOWN)
            return PlaySession.EndReason.WORKER_SHUTDOWN
        try:
            _record_stream_input(session, stream)
            session.refresh_from_db()
        except DatabaseError:
            # A database restart or failover: the player's stream does not need the database,
            # so it plays on while the limits wait. Past WORKER_TIMEOUT the reaper counts this
            # worker lost anyway, and the session ends as an error.
            close_old_connections()
            unreachable_since = unreachable_since or time.monotonic()
            if time.monotonic() - unreachable_since >= settings.WORKER_TIMEOUT:
                raise
            logger.warning("session %s: database unreachable; playing on", session.public_id)
            continue
        if unreachable_since is not None:
            logger.info("session %s: database back", session.public_id)
            unreachable_since = None
        if not session.is_live:
            return None  # ended elsewhere: the player left or an operator ended it
        now = timezone.now()
        last_input = _channel_input_at(stream)  # this process saw it: no database round trip
        feed = loop.feed(str(session.public_id))
        broken = feed is None or feed.error or not loop.is_alive()
        reason = (
            PlaySession.EndReason.ERROR
            if broken
            else end_reason(session, now, stream.peer_gone_for(), last_input)
        )
        if reason:
            end_session(session, reason)
            return reason
        idle_left = session.pool.idle_seconds - idle_seconds(session, now, last_input)
        if idle_left <= session.pool.idle_warning_seconds and not warned:
            warned = True
            notify.send_now(
                notify.session_group(session.public_id),
                {"type": "session.idle_warning", "seconds": round(idle_left)},
            )
        elif idle_left > session.pool.idle_warning_seconds:
            warned = False


def _end_with_error(session: PlaySession) -> str:
    """Record an ERROR end after the runner itself failed, so the session is not left RUNNING."""
    close_old_connections()  # the failure may have been a dropped database connection
    try:
        end_session(session, PlaySession.EndReason.ERROR)
    except Exception:
        logger.exception("session %s: recording the error end failed", session.public_id)
    return PlaySession.EndReason.ERROR


def _channel_input_at(stream: SessionStream) -> datetime | None:
    """When the data channel last carried input that did something."""
    active = stream.folder.last_activity
    return None if active is None else datetime.fromtimestamp(active, tz=UTC)


def _record_stream_input(session: PlaySession, stream: SessionStream) -> None:
    """Keep the data channel's activity on the session row (for operators), once a second.

    The idle limit itself reads the activity straight from the stream (`_channel_input_at`).
    """
    at = _channel_input_at(stream)
    if at is None:
        return
    if session.last_input_at is None or at - session.last_input_at >= INPUT_RECORD_STEP:
        PlaySession.objects.filter(pk=session.pk, state__in=PlaySession.LIVE_STATES).update(
            last_input_at=at
        )
