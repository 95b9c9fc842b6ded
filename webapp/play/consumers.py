"""The play page's control channel: status, time left, idle warnings, end reasons, leave, and
WebRTC signalling relayed between the page and the worker that owns the session.

The web tier only relays: an offer goes to the group the owning worker's session listens on
(`session.<uuid>.worker`) with this consumer's channel as the reply address, and the worker's
answer comes back as a "session.signal" event to this consumer alone.
"""

from __future__ import annotations

import json
import logging
import time

from channels.db import database_sync_to_async

from streaming.signalling import MAX_SDP_CHARS, worker_group
from webapp import notify
from webapp.play import services
from webapp.play.models import PlaySession
from webapp.wsutil import CLOSE_FORBIDDEN, BadMessage, OwnedObjectConsumer

logger = logging.getLogger(__name__)

# Input only proves the player is there; one write a second is enough for the idle limit.
INPUT_RECORD_PERIOD = 1.0


# An offer carries an SDP of a few kilobytes, more than the other consumers ever accept.
MAX_PLAY_MESSAGE_BYTES = MAX_SDP_CHARS + 1024


class PlayConsumer(OwnedObjectConsumer):
    allowed_types = frozenset({"input", "leave", "heartbeat", "offer"})

    def parse(self, text_data, bytes_data) -> dict:
        if text_data is None:
            raise BadMessage("messages must be JSON text")
        if len(text_data) > MAX_PLAY_MESSAGE_BYTES:
            raise BadMessage(f"message larger than {MAX_PLAY_MESSAGE_BYTES} bytes")
        try:
            content = json.loads(text_data)
        except ValueError as exc:
            raise BadMessage("message is not valid JSON") from exc
        if not isinstance(content, dict) or content.get("type") not in self.allowed_types:
            raise BadMessage(f"message type must be one of {sorted(self.allowed_types)}")
        return content

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
        elif kind == "offer":
            await self._relay_offer(content)

    async def _relay_offer(self, content: dict) -> None:
        sdp = content.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            await self.send_json({"type": "error", "error": "an offer needs an SDP string"})
            return
        status = await self._status()
        if status["state"] != PlaySession.State.RUNNING:
            # Before the worker claims the session nobody listens; the page offers again
            # when the status says "running".
            await self.send_json({"type": "signal", "kind": "not_ready", "state": status["state"]})
            return
        await self.channel_layer.group_send(
            worker_group(str(self.session.public_id)),
            {"type": "signal.offer", "sdp": sdp, "reply_to": self.channel_name},
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

    async def session_signal(self, event):
        await self.send_json({"type": "signal", **event["signal"]})

    async def session_idle_warning(self, event):
        await self.send_json({"type": "idle_warning", "seconds": event["seconds"]})
