"""The play page's control channel: status, time left, idle warnings, end reasons, leave.

In this platform issue it also carries the placeholder picture; WebRTC signalling joins it in
the streaming issue.
"""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async

from webapp import notify
from webapp.play import services
from webapp.play.models import PlaySession
from webapp.wsutil import CLOSE_FORBIDDEN, OwnedObjectConsumer

logger = logging.getLogger(__name__)

# Input only proves the player is there; one write a second is enough for the idle limit.
INPUT_RECORD_PERIOD = 1.0


class PlayConsumer(OwnedObjectConsumer):
    allowed_types = frozenset({"input", "leave", "heartbeat"})

    async def connect(self):
        if not await self.reject_unless_user():
            return
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.session = await self._own_session(session_id)
        if self.session is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = notify.session_group(self.session.public_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.last_input_record = 0.0
        await database_sync_to_async(services.record_connection)(self.session, True)
        await self.send_status()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await database_sync_to_async(services.record_connection)(self.session, False)

    async def receive_json(self, content, **kwargs):
        kind = content["type"]
        if kind == "input":
            now = time.monotonic()
            if now - self.last_input_record >= INPUT_RECORD_PERIOD:
                self.last_input_record = now
                await database_sync_to_async(services.record_input)(self.session)
        elif kind == "leave":
            await database_sync_to_async(services.end_session)(
                self.session, PlaySession.EndReason.LEFT
            )

    @database_sync_to_async
    def _own_session(self, session_id):
        return (PlaySession.objects.select_related("pool", "world")
                .filter(public_id=session_id, user=self.scope["user"]).first())

    @database_sync_to_async
    def _status(self) -> dict:
        session = self.session
        session.refresh_from_db()
        return {
            "type": "status",
            "state": session.state,
            "seconds_left": session.seconds_left(),
            "allowed_seconds": session.allowed_seconds,
            "idle_seconds": session.pool.idle_seconds,
            "end_reason": session.end_reason,
            "end_label": session.get_end_reason_display() if session.end_reason else "",
            "front_pass": session.has_front_pass(),
        }

    async def send_status(self):
        await self.send_json(await self._status())

    async def session_changed(self, event):
        await self.send_status()

    async def session_ended(self, event):
        await self.send_json({"type": "ended", "reason": event["reason"],
                              "label": event["label"], "front_pass": event["front_pass"]})

    async def session_frame(self, event):
        await self.send_json({"type": "frame", "frame": event["frame"], "image": event["image"]})

    async def session_idle_warning(self, event):
        await self.send_json({"type": "idle_warning", "seconds": event["seconds"]})
